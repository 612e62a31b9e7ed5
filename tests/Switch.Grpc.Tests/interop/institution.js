'use strict';
// grpc-js client of the switch's institution API, for the host tests:
//   node institution.js <host:port> <api-key> <scenario> <order-prefix>
// Prints one JSON line; always exits 0 unless it crashed. Requests are built from proto/switch/v1/institution.proto
// by grpc-js's own loader; raw bytes go out as they are (a custom serializer), to send what is not a message.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const protoDir = path.resolve(__dirname, '..', '..', '..', 'proto');
const definition = protoLoader.loadSync(path.join(protoDir, 'switch', 'v1', 'institution.proto'), {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const service = definition['switch.v1.InstitutionService'];

const [target, apiKey, scenario, prefix, ...rest] = process.argv.slice(2);
const client = new grpc.Client(target, grpc.credentials.createInsecure());

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function metadata() {
  const md = new grpc.Metadata();
  md.set('x-api-key', apiKey);
  return md;
}

function payment(orderNo, amountFen) {
  return service.Transact.requestSerialize({
    order_no: orderNo, amount_fen: String(amountFen), currency: 'CNY', bank: '102', account: '6222020200112233',
    kind: 'REQUEST_KIND_AGREEMENT_PAYMENT',
  });
}

// Writes the frames as given (already serialized) on one Transact stream, half-closes, collects everything.
function transact(frames) {
  return new Promise((resolve) => {
    const results = [];
    const call = client.makeBidiStreamRequest(service.Transact.path, (b) => b, service.Transact.responseDeserialize,
      metadata(), { deadline: new Date(Date.now() + 30000) });
    call.on('data', (r) => results.push({ order_no: r.order_no, status: r.status, reject_code: r.reject_code }));
    call.on('error', (err) => resolve({ code: err.code, details: err.details, results }));
    call.on('end', () => resolve({ code: 0, details: '', results }));
    for (const f of frames) call.write(f);
    call.end();
  });
}

function query(orderNo) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(service.Query.path, service.Query.requestSerialize, service.Query.responseDeserialize,
      { order_no: orderNo, kind: 'REQUEST_KIND_QUERY' }, metadata(), { deadline: new Date(Date.now() + 30000) },
      (err, r) => resolve(err ? { code: err.code, details: err.details } : { code: 0, status: r.status }));
  });
}

const scenarios = {
  // A payment, a message that parses but is invalid (amount 0), then bytes that are not a TransferRequest
  // (field 2, order_no, claims 100 bytes and has 1).
  async payment_then_malformed() {
    const stream = await transact([payment(`${prefix}-PAID`, 100), payment(`${prefix}-ZERO`, 0), Buffer.from([0x12, 100, 0x41])]);
    const paid = await query(`${prefix}-PAID`);
    return { ...stream, query: paid };
  },
  // A client that never reads: <connections> connections (each its own channel), <streams> Transact streams on
  // each, <perStream> payments written on each stream, its answers never read (the stream paused); holds them
  // <holdMs>, then closes everything. Counts the streams refused, by the status message's code.
  async flood() {
    const [connections, streams, perStream, holdMs] = rest.map(Number);
    const refused = {};
    const clients = [];
    const calls = [];
    for (let c = 0; c < connections; c++) {
      const own = new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
      clients.push(own);
      for (let s = 0; s < streams; s++) {
        const call = own.makeBidiStreamRequest(service.Transact.path, service.Transact.requestSerialize,
          service.Transact.responseDeserialize, metadata(), {});
        call.on('error', (err) => {
          const code = (err.details || '').split(':')[0] || String(err.code);
          if (err.code !== grpc.status.CANCELLED) refused[code] = (refused[code] || 0) + 1;
        });
        if (!prefix.startsWith('READ')) call.pause(); // a READ... prefix: the same load, answers read
        for (let i = 0; i < perStream; i++) {
          call.write({ order_no: `${prefix}-${c}-${s}-${i}`, amount_fen: '1', currency: 'CNY', bank: '102',
            account: `${prefix}-${c}-${s}`, kind: 'REQUEST_KIND_AGREEMENT_PAYMENT' });
        }
        calls.push(call);
      }
    }
    await new Promise((r) => setTimeout(r, holdMs));
    for (const call of calls) call.cancel();
    for (const own of clients) own.close();
    await new Promise((r) => setTimeout(r, 200));
    return { code: 0, refused };
  },
  // <streams> Transact streams on the one connection, <perStream> payments written on each, never read; after
  // <holdMs> one stream more on the same connection: its outcome (code, details) within <waitMs>, or timed_out.
  async stalled_then_new_stream() {
    const [streams, perStream, holdMs, waitMs] = rest.map(Number);
    const calls = [];
    for (let s = 0; s < streams; s++) {
      const call = client.makeBidiStreamRequest(service.Transact.path, service.Transact.requestSerialize,
        service.Transact.responseDeserialize, metadata(), {});
      call.on('error', () => {});
      call.pause();
      for (let i = 0; i < perStream; i++) {
        call.write({ order_no: `${prefix}-${s}-${i}`, amount_fen: '1', currency: 'CNY', bank: '102',
          account: `${prefix}-${s}`, kind: 'REQUEST_KIND_AGREEMENT_PAYMENT' });
      }
      calls.push(call);
    }
    await new Promise((r) => setTimeout(r, holdMs));
    const extra = await new Promise((resolve) => {
      const call = client.makeBidiStreamRequest(service.Transact.path, service.Transact.requestSerialize,
        service.Transact.responseDeserialize, metadata(), {});
      const timer = setTimeout(() => { call.cancel(); resolve({ timed_out: true }); }, waitMs);
      call.on('data', () => {});
      call.on('error', (err) => { clearTimeout(timer); resolve({ code: err.code, details: err.details }); });
      call.on('end', () => { clearTimeout(timer); resolve({ code: 0, details: '' }); });
    });
    const unary = await query(`${prefix}-0-0`);
    for (const call of calls) call.cancel();
    return { extra, query: unary };
  },
};

const run = scenarios[scenario];
if (!run) {
  print({ error: `unknown scenario ${scenario}` });
  process.exit(0);
}
run().then((r) => { print({ scenario, ...r }); client.close(); })
  .catch((e) => { print({ scenario, error: String(e && e.stack || e) }); process.exit(0); });
