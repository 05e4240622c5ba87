// Runs conf/cloudfront/thimble-viewer-request.js (a CloudFront Function, which has no module
// system) on sample viewer-request events, with and without MOVE_SIGNATURE.
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');

const source = fs.readFileSync(
    path.join(__dirname, '..', 'conf', 'cloudfront', 'thimble-viewer-request.js'), 'utf8');
assert.ok(source.includes('var MOVE_SIGNATURE = false;'), 'the shipped default moves nothing');

function load(moveSignature) {
  const text = source.replace('var MOVE_SIGNATURE = false;',
                              'var MOVE_SIGNATURE = ' + moveSignature + ';');
  return new Function(text + '\nreturn handler;')();
}

function event(uri, accept) {
  const headers = {host: {value: 'cdn.example.com'}};
  if (accept !== undefined) headers.accept = {value: accept};
  return {version: '1.0', context: {eventType: 'viewer-request'},
          request: {method: 'GET', uri: uri, querystring: {}, headers: headers, cookies: {}}};
}

const signature = 'sig-0123456789abcdef_ABCDEF=';
assert.strictEqual(signature.length, 28);
const signed = '/' + signature + '/fit-in/300x200/photos/cat.jpg';

// Accept: a few values in all, whatever the browser sends.
const only = load(false);
const accepts = [
  ['image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8', 'image/avif,image/webp,*/*'],
  ['image/avif;q=0,image/webp', 'image/webp,*/*'],
  ['image/avif', 'image/avif,*/*'],
  ['image/webp', 'image/webp,*/*'],
  ['IMAGE/WEBP;q=0.9', 'image/webp,*/*'],
  ['image/webp;q=0, image/png', '*/*'],
  ['image/webp;q=0.0', '*/*'],
  ['image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5', '*/*'],
  ['*/*', '*/*'],
  [undefined, '*/*'],
];
for (const [accept, expected] of accepts) {
  const request = only(event(signed, accept));
  assert.strictEqual(request.headers.accept.value, expected, String(accept));
  assert.strictEqual(request.uri, signed, 'the path is untouched without MOVE_SIGNATURE');
  assert.strictEqual(request.headers['x-thimble-signature'], undefined);
}

// MOVE_SIGNATURE: the path becomes the result-storage key, the signature a header.
const move = load(true);
let request = move(event(signed, 'image/webp'));
assert.strictEqual(request.uri, '/fit-in/300x200/photos/cat.jpg');
assert.strictEqual(request.headers['x-thimble-signature'].value, signature);
const encoded = '/' + signature.slice(0, 27) + '%3D/300x300/smart/a%20b.jpg';
request = move(event(encoded));
assert.strictEqual(request.uri, '/300x300/smart/a%20b.jpg');
assert.strictEqual(request.headers['x-thimble-signature'].value, signature.slice(0, 27) + '%3D');
// Nothing else is rewritten: unsafe URLs, public presets, health checks, short first segments.
for (const uri of ['/unsafe/fit-in/300x200/cat.jpg', '/preset:avatar/cat.jpg', '/healthz',
                   '/short=/fit-in/1x1/cat.jpg', '/' + signature]) {
  request = move(event(uri));
  assert.strictEqual(request.uri, uri);
  assert.strictEqual(request.headers['x-thimble-signature'], undefined, uri);
}
console.log('CloudFront function: all checks passed');
