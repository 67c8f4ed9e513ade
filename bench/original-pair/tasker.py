#!/usr/bin/python3
# The asreview-cloud tasker (tasker-send.py) as it ran, kept as the baseline of bench/distributed.sh
# and bench/local.sh: every line of the file published to a durable classic queue, persistent, with
# the reply queue's name; then one auto-acked reply counted per line. No confirms, no state.
# Only the queue names are parameters (the original's were fixed), so each bench run has its own.
#
#   /usr/bin/python3 bench/original-pair/tasker.py JOBS_FILE   # pika from Debian's python3-pika
import os
import sys

import pika

from connection import REPLY_QUEUE, WORK_QUEUE, connect


class Tasker:
    def __init__(self, filename):
        if not os.path.exists(filename):
            print(f"Error: File {filename} does not exist")
            sys.exit(1)
        self.connection = connect()
        channel = self.connection.channel()
        channel.queue_declare(queue=REPLY_QUEUE)
        channel.queue_declare(queue=WORK_QUEUE, durable=True)

        # Replies still to come; the run ends when it reaches 0.
        self.sent_messages = 0
        print(f"Sending file {filename}")
        with open(filename, encoding="utf-8") as f:
            # readlines keeps each line's newline in the message, as the original sent it.
            for i, line in enumerate(f.readlines()):
                print(f"Sent [{i}]: {line}")
                channel.basic_publish(
                    exchange="",
                    routing_key=WORK_QUEUE,
                    body=line,
                    properties=pika.BasicProperties(
                        delivery_mode=pika.spec.PERSISTENT_DELIVERY_MODE,
                        reply_to=REPLY_QUEUE,
                    ),
                )
                self.sent_messages += 1

        channel.basic_consume(REPLY_QUEUE, on_message_callback=self.on_reply, auto_ack=True)
        channel.start_consuming()

    def on_reply(self, ch, method, properties, body):
        print(f"[{self.sent_messages} Done] Msg: {body.decode()}")
        self.sent_messages -= 1
        if self.sent_messages == 0:
            self.connection.close()
            sys.exit(0)


if __name__ == "__main__":
    try:
        if len(sys.argv) < 2:
            print(f"Usage:\npython {sys.argv[0]} FILENAME\n")
            sys.exit(1)
        Tasker(sys.argv[1])
    except KeyboardInterrupt:
        print("Interrupted")
        os._exit(0)
