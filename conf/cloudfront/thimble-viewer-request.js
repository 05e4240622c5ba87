// CloudFront Function (viewer request, runtime cloudfront-js-2.0) for Thimble.
//
// 1. Accept is reduced to a few values, so a cache policy that keys on Accept keeps at most three
//    copies of a thumbnail in practice (AVIF, WebP, or the source format for the rest; a browser
//    that takes AVIF but not WebP would be a fourth) instead of one per browser's Accept string.
//    Thimble (output.auto_avif, output.auto_webp) answers from the same values.
// 2. MOVE_SIGNATURE: for an origin group whose primary origin is Thimble's result-storage bucket,
//    the signature moves from the path into the x-thimble-signature header, so the path becomes
//    the stored object's key: /<signature>/<options>/<image> -> /<options>/<image>. Thimble, the
//    failover origin, reads it back from that header (security.signature_header). Put
//    x-thimble-signature in the cache key, so a forged signature's 403 can never be cached for the
//    genuine URL. Leave MOVE_SIGNATURE false when Thimble is the only origin.
//
// tests/test_cloudfront_function.js runs this file with Node on sample events.

var MOVE_SIGNATURE = false;

// A Thumbor signature: 28 characters of URL-safe base64, its padding `=` possibly percent-encoded.
var SIGNED = /^\/([A-Za-z0-9_-]{27}(?:=|%3D))(\/.+)$/;

function handler(event) {
    var request = event.request;
    var accept = request.headers.accept ? request.headers.accept.value : '';
    var avif = /image\/avif(?!\s*;\s*q=0(?:\.0*)?(?:[,;\s]|$))/i.test(accept);
    var webp = /image\/webp(?!\s*;\s*q=0(?:\.0*)?(?:[,;\s]|$))/i.test(accept);
    request.headers.accept = {
        value: avif && webp ? 'image/avif,image/webp,*/*'
             : avif ? 'image/avif,*/*'
             : webp ? 'image/webp,*/*' : '*/*'
    };

    if (MOVE_SIGNATURE) {
        var signed = SIGNED.exec(request.uri);
        if (signed) {
            request.headers['x-thimble-signature'] = { value: signed[1] };
            request.uri = signed[2];
        }
    }
    return request;
}
