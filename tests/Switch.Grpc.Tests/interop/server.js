'use strict';
// grpc-js server for the interop tests: binds 127.0.0.1:0 and prints {"port": N} as its first line.
// Behaves like the C# InteropService: sleep_ms, fail_code/fail_message, reply_bytes, count.
const { grpc, Interop, print } = require('./common');

const MAX_RECEIVE_BYTES = 2 * 1024 * 1024;

function reply(req, index) {
  return {
    text: req.text,
    index,
    payload: req.reply_bytes > 0 ? Buffer.alloc(req.reply_bytes) : req.payload,
  };
}

function failure(req) {
  const metadata = new grpc.Metadata();
  metadata.set('x-fail', 'yes');
  return { code: req.fail_code, details: req.fail_message, metadata };
}

function sleep(call, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    call.on('cancelled', () => { clearTimeout(timer); resolve(); });
  });
}

const handlers = {
  async Unary(call, callback) {
    const req = call.request;
    if (req.sleep_ms > 0) await sleep(call, req.sleep_ms);
    if (call.cancelled) return;
    if (req.fail_code !== 0) return callback(failure(req));
    const echo = call.metadata.get('x-echo');
    if (echo.length > 0) {
      const trailers = new grpc.Metadata();
      trailers.set('x-echo', String(echo[0]));
      return callback(null, reply(req, 0), trailers);
    }
    callback(null, reply(req, 0));
  },

  ServerStream(call) {
    const req = call.request;
    for (let i = 0; i < req.count; i++) call.write(reply(req, i));
    if (req.fail_code !== 0) return call.emit('error', failure(req));
    call.end();
  },

  ClientStream(call, callback) {
    let count = 0;
    let bytes = 0;
    call.on('data', (req) => { count++; bytes += req.payload.length; });
    call.on('end', () => callback(null, { text: `${count}:${bytes}`, index: count }));
  },

  Bidi(call) {
    let index = 0;
    let failed = false;
    call.on('data', (req) => {
      if (failed) return;
      if (req.fail_code !== 0) {
        failed = true;
        return call.emit('error', failure(req));
      }
      call.write(reply(req, index++));
    });
    call.on('end', () => { if (!failed) call.end(); });
  },
};

const server = new grpc.Server({
  'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
  'grpc.max_send_message_length': -1,
});
server.addService(Interop.service, handlers);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    print({ error: String(err) });
    process.exit(1);
  }
  print({ port });
});

// Exit when the test process closes our stdin (it also kills us on dispose).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
