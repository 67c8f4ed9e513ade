import { describe, expect, it } from 'vitest';
import { describeConnectError, isPermanentConnectError } from '../../shared/broker/amqp-session.js';
import { checkAmqpUrl, checkRedisUrl, redactUrl } from '../../shared/config/urls.js';

describe('redactUrl', () => {
  it.each([
    ['amqp://user:s3cret@rabbit:5672/vhost', 'amqp://user:***@rabbit:5672/vhost'],
    ['redis://:s3cret@redis:6379/2', 'redis://:***@redis:6379/2'],
    ['amqp://rabbit:5672', 'amqp://rabbit:5672'],
    // Not URLs: everything before the last "@" goes, whatever the shape.
    ['amqp//user:s3cret@rabbit', '***@rabbit'],
    ['user:s3cret@rabbit:5672', 'user:***@rabbit:5672'],
    ['not a url with spaces:s3cret@host', '***@host'],
    ['amqp://user:s3 cret@rabbit', 'amqp://user:***@rabbit'],
  ])('%s -> %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
    expect(redactUrl(url)).not.toContain('s3cret');
  });
});

describe('URL checks never echo a password', () => {
  it.each(['amqp//user:s3cret@rabbit', 'user:s3cret@rabbit:5672', 'http://user:s3cret@rabbit', 'amqp://user:s3cret@'])('%s', (url) => {
    expect(checkAmqpUrl(url)).toMatch(/AMQP_URL/);
    expect(checkAmqpUrl(url)).not.toContain('s3cret');
    expect(checkRedisUrl(url.replace('amqp', 'redis'))).not.toContain('s3cret');
  });
});

describe('describeConnectError', () => {
  const url = 'amqp://user:s3cret@rabbit:5672/jobs';
  it.each([
    ['Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"', /refused the user name or password \(check AMQP_URL\)/, true],
    ['connect ECONNREFUSED 10.0.0.1:5672', /connection refused \(is it running\? check AMQP_URL\)/, false],
    ['getaddrinfo ENOTFOUND rabbit', /unknown host/, false],
    ['Expected ConnectionOpenOk; got <ConnectionClose channel:0>', /refused the virtual host "jobs"/, true],
    ['Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg \'x-delivery-limit\' for queue \'t.commands\' in vhost \'/\': received \'3\' but current is \'10\'"', /inequivalent arg 'x-delivery-limit'.*made by an older tasker\? Once it is empty, delete it \(rabbitmqctl delete_queue t\.commands\)/, true],
    ['Frame size 1345270062 exceeds maxFrameSize 67108864', /does not answer as RabbitMQ does/, true],
    ['connect ETIMEDOUT', /no answer within 5 s/, true],
    // Logged in, but not allowed: a least-privilege user (docs/kubernetes.md) whose permissions miss a resource.
    [
      'Operation failed: QueueDeclare; 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - configure access to queue \'tasker.commands\' in vhost \'/\' refused for user \'worker-highmem\'"',
      /refused user worker-highmem configure access to queue tasker\.commands: its permissions do not allow it \(rabbitmqctl list_user_permissions worker-highmem; docs\/kubernetes\.md, "Least privilege", lists each role's\)/,
      true,
    ],
  ])('%s', (message, expected, permanent) => {
    const text = describeConnectError(url, new Error(message));
    expect(text).toMatch(expected);
    expect(text).not.toContain('s3cret');
    expect(isPermanentConnectError(new Error(message))).toBe(permanent);
  });
});
