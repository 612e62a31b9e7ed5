'use strict';
// grpc-js client for the interop tests: node client.js <host:port> <scenario>
// Prints one JSON line: {"scenario", "ok", "code", "details", ...}; always exits 0 unless it crashed.
const { grpc, Interop, print } = require('./common');

const [target, scenario] = process.argv.slice(2);
const client = new Interop(target, grpc.credentials.createInsecure(), {
  'grpc.max_receive_message_length': 8 * 1024 * 1024,
  'grpc.max_send_message_length': -1,
});

function deadline(ms) {
  return new Date(Date.now() + ms);
}

function unary(request, options = {}, metadata = new grpc.Metadata()) {
  // grpc-js calls back before it emits 'status' (which carries the trailers): answer on 'status'.
  return new Promise((resolve) => {
    let result = null;
    const call = client.Unary(request, metadata, options, (err, response) => {
      result = err
        ? { ok: false, code: err.code, details: err.details, failTrailer: err.metadata.get('x-fail')[0] || null }
        : { ok: true, code: 0, response };
    });
    call.on('status', (status) => setImmediate(() => resolve({ ...result, trailers: status.metadata })));
  });
}

function bidi(requests, options = {}) {
  return new Promise((resolve) => {
    const replies = [];
    const call = client.Bidi(new grpc.Metadata(), options);
    call.on('data', (r) => replies.push(r));
    call.on('error', (err) => resolve({ ok: false, code: err.code, details: err.details, replies }));
    call.on('end', () => resolve({ ok: true, code: 0, replies }));
    for (const r of requests) call.write(r);
    call.end();
  });
}

const scenarios = {
  async unary() {
    const md = new grpc.Metadata();
    md.set('x-echo', 'from-node');
    const r = await unary({ text: 'hello from node' }, {}, md);
    return { ok: r.ok, code: r.code, text: r.ok ? r.response.text : null, echo: r.ok && r.trailers ? (r.trailers.get('x-echo')[0] || null) : null };
  },
  async bidi() {
    const count = 5000;
    const requests = Array.from({ length: count }, (_, i) => ({ text: `b${i}` }));
    const r = await bidi(requests);
    const inOrder = r.replies.every((x, i) => x.index === i && x.text === `b${i}`);
    return { ok: r.ok, code: r.code, count: r.replies.length, inOrder };
  },
  async bidi_error() {
    const r = await bidi([{ text: 'a' }, { text: 'b', fail_code: 9, fail_message: 'precondition failed: b' }]);
    return { ok: r.ok, code: r.code, details: r.details, count: r.replies.length };
  },
  async server_stream() {
    return new Promise((resolve) => {
      let count = 0;
      const call = client.ServerStream({ text: 's', count: 1000 });
      call.on('data', () => count++);
      call.on('error', (err) => resolve({ ok: false, code: err.code, details: err.details, count }));
      call.on('end', () => resolve({ ok: true, code: 0, count }));
    });
  },
  async deadline() {
    await unary({ text: 'warm-up' }); // Connect first, so the deadline is spent at the server, not on setup.
    const r = await unary({ text: 'slow', sleep_ms: 20000 }, { deadline: deadline(1000) });
    return { ok: r.ok, code: r.code, details: r.details };
  },
  async error() {
    const r = await unary({ fail_code: 5, fail_message: 'no such account: Zürich 100%' });
    return { ok: r.ok, code: r.code, details: r.details, failTrailer: r.failTrailer };
  },
  async unknown_exception() {
    const r = await unary({ text: 'throw' });
    return { ok: r.ok, code: r.code, details: r.details };
  },
  async large_ok() {
    const r = await unary({ payload: Buffer.alloc(1024 * 1024, 7), reply_bytes: 1024 * 1024 });
    return { ok: r.ok, code: r.code, details: r.details, payloadBytes: r.ok ? r.response.payload.length : 0 };
  },
  async large_over() {
    const r = await unary({ payload: Buffer.alloc(3 * 1024 * 1024, 7) });
    return { ok: r.ok, code: r.code, details: r.details };
  },
};

(async () => {
  const run = scenarios[scenario];
  if (!run) {
    print({ scenario, ok: false, error: 'unknown scenario' });
  } else {
    try {
      print({ scenario, ...(await run()) });
    } catch (e) {
      print({ scenario, ok: false, error: String(e && e.stack || e) });
    }
  }
  client.close();
  process.exit(0);
})();
