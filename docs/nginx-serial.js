// X-PyPI-Last-Serial for the pages nginx serves from the published tree, as wheelfarm's own
// server sends it (wheelfarm/web/headers.py, serial_of): a simple page's serial (a project's
// page: the project's; the root: the highest) and the project JSON's, read from the first
// 4 KB of the page, where the publisher puts it (JSON "_last-serial", the HTML
// <!--SERIAL n--> comment; the project JSON's "serial"). Any other file: no header.
//
// Loaded by docs/nginx.conf (js_import, js_set); needs nginx's njs module (Debian:
// libnginx-mod-http-js). docs/serving.md explains it.

var fs = require('fs');

var HEAD = 4096;
var SIMPLE_PAGE = /^\/simple\/(?:[^\/]+\/)?index\.(?:html|json)$/;
var PROJECT_JSON = /^\/project\/[^\/]+\/json\/index\.json$/;
var SIMPLE_SERIAL = /<!--SERIAL ([0-9]+)-->|"_last-serial":\s*([0-9]+)/;
var PROJECT_SERIAL = /"serial":\s*([0-9]+)/;

function head(path) {
    var fd = fs.openSync(path, 'r');
    try {
        var buffer = Buffer.alloc(HEAD);
        var read = fs.readSync(fd, buffer, 0, HEAD, 0);
        // A character cut at the end decodes as U+FFFD: the serial comes well before it.
        return buffer.toString('utf8', 0, read);
    } finally {
        fs.closeSync(fd);
    }
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
    var text;
    try {
        text = head(r.variables.request_filename);
    } catch (e) {
        return '';  // gone (a 404 follows), or unreadable (a 403 follows)
    }
    var found = pattern.exec(text);
    return found ? (found[1] || found[2]) : '';
}

export default {serial};
