#!/usr/bin/python3
# The asreview-cloud worker (worker-receiver.py, without its S3 upload) as it ran, kept as the
# baseline of bench/distributed.sh and bench/local.sh: prefetch 1, each message run with
# subprocess.run(shell=True, check=True), then the body sent back to reply_to and the message acked.
# Only the queue names are parameters (the original's were fixed), so each bench run has its own.
#
#   /usr/bin/python3 bench/original-pair/worker.py   # until killed; pika from Debian's python3-pika
import os
import shutil
import subprocess

from connection import RABBITMQ_USER, REPLY_QUEUE, WORK_QUEUE, connect


class Worker:
    def __init__(self):
        connection = connect()
        channel = connection.channel()
        channel.queue_declare(queue=WORK_QUEUE, durable=True)
        channel.queue_declare(queue=REPLY_QUEUE)
        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(queue=WORK_QUEUE, on_message_callback=self.on_message)
        print("[*] Waiting for messages. CTRL+C to exit")
        channel.start_consuming()

    def on_message(self, ch, method, properties, body):
        cmd = body.decode()
        print("=> Received %r" % cmd)
        try:
            subprocess.run(cmd, check=True, shell=True)
            print("✓ Done")
            ch.basic_publish("", routing_key=properties.reply_to, body=body)
            ch.basic_ack(delivery_tag=method.delivery_tag)
        except Exception:
            # The original forgave a failed simulation only (its temporary project removed, the
            # command noted under issues/); any other failure ends the worker, its message unacked.
            if "simulate" not in cmd:
                raise
            split_cmd = cmd.split()
            name = split_cmd[split_cmd.index("-s") + 1]
            shutil.rmtree(f"{name}.tmp")
            with open(f"issues/{RABBITMQ_USER}.txt", "a", encoding="utf-8") as f:
                f.write(cmd)
            print("x Error on simulate, deleting tmp file, storing file on issues/")
            ch.basic_publish("", routing_key=properties.reply_to, body=body)
            ch.basic_ack(delivery_tag=method.delivery_tag)


if __name__ == "__main__":
    try:
        Worker()
    except KeyboardInterrupt:
        print("Interrupted")
        os._exit(0)
