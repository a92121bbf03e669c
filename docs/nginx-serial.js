// X-PyPI-Last-Serial for the pages nginx serves from the published tree, as wheelfarm's own
// server sends it (wheelfarm/web/headers.py, serial_of): a simple page's serial (a project's
// page: the project's; the root: the highest) and the project JSON's, read from the first
// 4 KB of the page, where the publisher puts it (JSON "_last-serial", the HTML
// <!--SERIAL n--> comment; the project JSON's "serial"). Any other file: no header.
//
// Loaded by docs/nginx.conf (js_import, js_set); needs nginx's njs module (Debian:
// libnginx-mod-http-js). docs/serving.md explains it.

var fs = require('fs');

var HEAD = 4096;  // as much as the built-in server reads (wheelfarm.web.headers.SERIAL_HEAD)
var FIRST = 512;  // where the serial is on every page the publisher writes: looked at first
var SIMPLE_PAGE = /^\/simple\/(?:[^\/]+\/)?index\.(?:html|json)$/;
var PROJECT_JSON = /^\/project\/[^\/]+\/json\/index\.json$/;
var SIMPLE_SERIAL = /<!--SERIAL ([0-9]+)-->|"_last-serial":\s*([0-9]+)/;
var PROJECT_SERIAL = /"serial":\s*([0-9]+)/;

function find(pattern, buffer, length, partial) {
    // A character cut at the end decodes as U+FFFD: the serial comes well before it.
    var text = buffer.toString('utf8', 0, length);
    var found = pattern.exec(text);
    if (found === null) {
        return null;
    }
    if (partial && found.index + found[0].length >= text.length) {
        return null;  // its digits may go on past what was decoded: decode it all
    }
    return found[1] || found[2];
}

function serial(r) {
    var uri = r.uri;
    var pattern = null;
    if (SIMPLE_PAGE.test(uri)) {
        pattern = SIMPLE_SERIAL;
    } else if (PROJECT_JSON.test(uri)) {
        pattern = PROJECT_SERIAL;
    } else {
        return '';  // an empty value: nginx sends no header
    }
    var buffer = Buffer.allocUnsafe(HEAD);
    var read;
    try {
        var fd = fs.openSync(r.variables.request_filename, 'r');
        try {
            read = fs.readSync(fd, buffer, 0, HEAD, 0);
        } finally {
            fs.closeSync(fd);
        }
    } catch (e) {
        return '';  // gone (a 404 follows), or unreadable (a 403 follows)
    }
    // Decoding and searching 4 KB per request costs more than reading it: the start first.
    var found = read > FIRST ? find(pattern, buffer, FIRST, true) : null;
    if (found === null) {
        found = find(pattern, buffer, read, false);
    }
    return found === null ? '' : found;
}

export default {serial};
