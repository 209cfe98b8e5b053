// Small helpers the page's modules share.

export const $ = (id) => document.getElementById(id);
// A new element with its properties set (className, id, textContent): no markup parsed.
export const element = (tag, properties = {}) => Object.assign(document.createElement(tag), properties);
export const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
