#!/usr/bin/env node
// The checks benchmark's target: a plain node:http server in a process of its own (so its
// CPU is not the collector's), answering every request 200 with a small JSON body. Prints
// its port on the first line of stdout; `GET /__stats` answers the request count.
import http from 'node:http';

let requests = 0;
const body = Buffer.from('{"status":"UP"}');
const server = http.createServer((req, res) => {
  if (req.url === '/__stats') {
    res.end(JSON.stringify({ requests }));
    return;
  }
  requests++;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => process.exit(0)));
