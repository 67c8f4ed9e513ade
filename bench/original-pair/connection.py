# What the original tasker and worker each set up the same way: the broker's address and user
# from the environment, the queue names (parameters here, fixed in the original, so that each bench
# run has its own), and a blocking connection with the original's one-hour heartbeat.
import os

import pika

RABBITMQ_HOST = os.environ.get("RABBITMQ_HOST", "localhost")
RABBITMQ_PORT = int(os.environ.get("RABBITMQ_PORT", "5672"))
RABBITMQ_USER = os.environ.get("RABBITMQ_USER", "guest")
RABBITMQ_PASS = os.environ.get("RABBITMQ_PASS", "guest")
WORK_QUEUE = os.environ.get("ORIGINAL_WORK_QUEUE", "asreview_queue")
REPLY_QUEUE = os.environ.get("ORIGINAL_REPLY_QUEUE", "tasker")


def connect():
    print(f"Logging as {RABBITMQ_USER}")
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            RABBITMQ_HOST,
            RABBITMQ_PORT,
            "/",
            pika.PlainCredentials(RABBITMQ_USER, RABBITMQ_PASS),
            heartbeat=3600,
        )
    )
