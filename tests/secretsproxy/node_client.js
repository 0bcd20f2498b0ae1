// Node https through the secrets proxy: an Agent that opens a CONNECT tunnel
// (Node 20 has no built-in HTTPS_PROXY support) and trusts the proxy CA via
// NODE_EXTRA_CA_CERTS. Usage: node node_client.js URL TOKEN ; prints the body.
const http = require('http');
const https = require('https');
const tls = require('tls');

const [url, token] = process.argv.slice(2);
const proxy = new URL(process.env.HTTPS_PROXY);
const target = new URL(url);

class TunnelAgent extends https.Agent {
  createConnection(options, callback) {
    const req = http.request({
      host: proxy.hostname, port: proxy.port, method: 'CONNECT',
      path: `${target.hostname}:${target.port || 443}`,
    });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) return callback(new Error(`CONNECT ${res.statusCode}`));
      callback(null, tls.connect({ socket, servername: options.servername || target.hostname }));
    });
    req.on('error', callback);
    req.end();
  }
}

const req = https.request(url, {
  method: 'POST', agent: new TunnelAgent(),
  headers: { 'Authorization': `Bearer ${token}`, 'Content-Type': 'application/json' },
}, (res) => {
  let body = '';
  res.on('data', (d) => (body += d));
  res.on('end', () => { process.stdout.write(`${res.statusCode}\n${body}`); });
});
req.on('error', (e) => { console.error(e.message); process.exit(1); });
req.end(JSON.stringify({ key: token }));
