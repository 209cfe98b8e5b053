"""python -m local.sqs --port 9324 --data .local/sqs"""

import argparse
import logging
from pathlib import Path

from local.sqs.server import SqsServer


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SQS emulator (SQS JSON protocol, durable in SQLite).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9324, help="0 picks a free port")
    parser.add_argument("--data", required=True, help="directory for the SQLite database")
    parser.add_argument("--region", default="us-east-1", help="region used in queue ARNs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    server = SqsServer(args.host, args.port, str(data / "sqs.sqlite3"), region=args.region)
    print(f"local SQS listening on {server.endpoint} (data in {data})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
