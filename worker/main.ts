import { ExitCode } from '../shared/errors.js';

/** Composition root of the worker. The RabbitMQ worker service is not built yet. */
if (process.env['AMQP_URL'] === undefined || process.env['AMQP_URL'] === '') {
  process.stderr.write(
    'worker: needs AMQP_URL (the RabbitMQ server to take commands from), e.g. AMQP_URL=amqp://user:pass@rabbitmq:5672.\n' +
      'To run a jobs file on this machine without RabbitMQ, use: tasker run FILE\n',
  );
} else {
  process.stderr.write('worker: the RabbitMQ worker service is not available in this version yet.\n');
}
process.exitCode = ExitCode.usage;
