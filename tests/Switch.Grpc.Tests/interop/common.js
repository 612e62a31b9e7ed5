'use strict';
// Loads interop.proto with @grpc/proto-loader; shared by server.js and client.js.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync(path.join(__dirname, 'interop.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const Interop = grpc.loadPackageDefinition(definition).switch.interop.Interop;

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

module.exports = { grpc, Interop, print };
