// The edge configuration's options are checked strictly (nothing a user types reaches nginx unless it fits a
// narrow pattern), and the text holds what the edge needs. test/edge/edge.test.ts runs it with the real nginx.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkEdgeOptions, EdgeConfigError, type EdgeConfigOptions, nginxEdgeConfig } from './nginx-config.ts';

const BASE: EdgeConfigOptions = { origins: ['http://10.0.0.5:8080'], listen: 8081, cacheDir: '/var/cache/sc/cache' };

function refused(o: Partial<EdgeConfigOptions>, message: RegExp): void {
  assert.throws(
    () => nginxEdgeConfig({ ...BASE, ...o }),
    (err: unknown) => err instanceof EdgeConfigError && message.test(err.message),
    JSON.stringify(o),
  );
}

/** What nginx's `map` computes: the first regex that matches, its value with the named captures filled in. */
function applyMap(conf: string, name: string, input: string): string {
  const block = new RegExp(`map \\S+ \\$${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(conf);
  assert.ok(block, `map ${name}`);
  let fallback = input;
  for (const line of block[1]!.split('\n')) {
    const d = /^\s+default (\S+);$/.exec(line);
    // The maps' defaults are their source variable (the input) or a constant.
    if (d) fallback = d[1]!.startsWith('$') ? input : d[1]!;
    const m = /^\s+"~(.*)" ("?)(.*)\2;$/.exec(line);
    if (!m) continue;
    const hit = new RegExp(m[1]!).exec(input);
    if (hit) return m[3]!.replace(/\$(\w+)/g, (_, v: string) => hit.groups?.[v] ?? '');
  }
  return fallback;
}

describe('edge-config options', () => {
  it('writes every origin with an explicit port into one upstream, with keepalive and failover', () => {
    const conf = nginxEdgeConfig({
      ...BASE,
      origins: ['http://Origin-1.example:8080/', 'http://origin-2.example', 'http://[fd00::5]:9000'],
    });
    assert.match(conf, /server origin-1\.example:8080 max_fails=2 fail_timeout=10s;/);
    assert.match(conf, /server origin-2\.example:80 max_fails=2 fail_timeout=10s;/);
    assert.match(conf, /server \[fd00::5\]:9000 max_fails=2 fail_timeout=10s;/);
    assert.match(conf, /keepalive 32;/);
    assert.match(conf, /proxy_http_version 1\.1;/);
    assert.match(conf, /proxy_set_header Connection "";/);
    assert.match(conf, /proxy_next_upstream error timeout http_502 http_503 http_504;/);
    assert.match(conf, /proxy_next_upstream_tries 3;/);
    assert.match(conf, /proxy_next_upstream_timeout 15s;/);
    assert.match(conf, /proxy_pass http:\/\/smoothcast_origins;/);
    assert.doesNotMatch(conf, /proxy_ssl/);
    const tls = nginxEdgeConfig({ ...BASE, origins: ['https://origin.example'] });
    assert.match(tls, /server origin\.example:443 /);
    assert.match(tls, /proxy_pass https:\/\/smoothcast_origins;/);
    assert.match(tls, /proxy_ssl_name origin\.example;/);
  });

  it('holds the cache, lock, stale, slice and header directives', () => {
    const conf = nginxEdgeConfig({ ...BASE, maxSize: '10G', user: 'www-data' });
    assert.match(
      conf,
      /proxy_cache_path \/var\/cache\/sc\/cache levels=1:2 keys_zone=smoothcast_edge:21m max_size=10g inactive=7d use_temp_path=off;/,
    );
    assert.match(conf, /^user www-data;$/m);
    assert.match(conf, /^worker_processes auto;$/m);
    assert.match(conf, /^pid \/var\/cache\/sc\/nginx\.pid;$/m);
    const location = (head: string) => {
      const at = conf.indexOf(`    location ${head} {`);
      assert.ok(at >= 0, head);
      return conf.slice(at, conf.indexOf('\n    }\n', at));
    };
    const lock = /proxy_cache_lock on;\n\s+proxy_cache_lock_timeout 10s;\n\s+proxy_cache_lock_age 10s;/;
    const staleUpdating = /proxy_cache_use_stale updating error timeout http_500 http_502 http_503 http_504;/;
    const staleOnErrors = /proxy_cache_use_stale error timeout http_500 http_502 http_503 http_504;/;
    const segments = location('/v/');
    assert.match(segments, lock);
    assert.match(segments, staleUpdating);
    assert.match(segments, /proxy_cache_background_update on;/);
    // Manifests: no lock (shared keys, personal answers), no stale copy while refreshing (it could outlive a
    // change of access), blocking reloads to the location with the lock.
    const manifests = location('~ "^/v/.*(?:\\.m3u8|\\.mpd|/Manifest)$"');
    assert.doesNotMatch(manifests, /proxy_cache_lock|updating|background_update/);
    assert.match(manifests, staleOnErrors);
    assert.match(manifests, /error_page 418 = @blocking_reload;\n\s+if \(\$sc_blocking\) \{\n\s+return 418;/);
    const blocking = location('@blocking_reload');
    assert.match(blocking, lock);
    assert.doesNotMatch(blocking, /updating|background_update/);
    const straight = location('~ "^/v/(?:time|live/.*|[^/]+/player\\.json|[^/]+/[^/]+/(?:key\\.bin|clearkey))$"');
    assert.match(straight, /proxy_cache off;/);
    assert.doesNotMatch(location('/'), /proxy_cache_lock/);
    assert.match(location('/assets/'), lock);
    assert.match(segments, /proxy_cache_valid 200 206 10s;/);
    assert.doesNotMatch(location('/'), /proxy_cache_valid/, 'web pages: only what says how long it keeps');
    assert.doesNotMatch(conf, /proxy_ignore_headers|proxy_cache_valid any|proxy_no_cache/);
    assert.match(conf, /add_header X-Cache-Status \$upstream_cache_status always;/);
    const log = /log_format [^;]*;/.exec(conf)?.[0] ?? '';
    assert.match(log, /\$upstream_cache_status/);
    assert.match(log, /\$request_time/);
    assert.doesNotMatch(log, /\$request\b|\$request_uri|\$args|\$query_string/, 'no token in the log');
    // slice and background_update do not combine: the slice location has no background update.
    const slice = /location ~ "[^"]*download-[^"]*" \{([^}]*)\}/.exec(conf)?.[1] ?? '';
    assert.match(slice, /slice 1m;/);
    assert.match(slice, /proxy_cache_key "[^"]*\$slice_range";/);
    assert.match(slice, /proxy_set_header Range \$slice_range;/);
    assert.match(
      slice,
      /proxy_set_header Host \$sc_host;/,
      'every header again (a location with its own drops the rest)',
    );
    assert.doesNotMatch(slice, /background_update/);
    const api = /location \/api\/ \{([^}]*)\}/.exec(conf)?.[1] ?? '';
    assert.match(api, /proxy_cache off;/);
    assert.match(api, /client_max_body_size 0;/);
    assert.match(api, /proxy_request_buffering off;/);
    const sse = /location ~ "\^\/api\/[^"]*events\$" \{([^}]*)\}/.exec(conf)?.[1] ?? '';
    assert.match(sse, /proxy_buffering off;/);
  });

  it('keeps token and sid out of the cache key and everything else in order', () => {
    const conf = nginxEdgeConfig(BASE);
    const strip = (args: string) => applyMap(conf, 'sc_args', applyMap(conf, 'sc_args_notoken', args));
    const cases: [string, string][] = [
      ['', ''],
      ['token=abc', ''],
      ['token=abc&sid=s1', ''],
      ['sid=s1&token=abc', ''],
      ['_HLS_msn=12&token=abc&_HLS_part=3', '_HLS_msn=12&_HLS_part=3'],
      ['token=abc&_HLS_msn=12&sid=x&_HLS_part=3', '_HLS_msn=12&_HLS_part=3'],
      ['_HLS_msn=12&_HLS_part=3&token=abc', '_HLS_msn=12&_HLS_part=3'],
      ['_HLS_skip=YES', '_HLS_skip=YES'],
      ['xtoken=1&mysid=2', 'xtoken=1&mysid=2'],
      ['a=1&xtoken=2&token=3', 'a=1&xtoken=2'],
      ['token=', ''],
    ];
    for (const [args, key] of cases) assert.equal(strip(args), key, args);
    const personal = (uri: string) => applyMap(conf, 'sc_personal', uri);
    assert.equal(personal('/v/abcdefgh/master.m3u8?token=t'), '1');
    assert.equal(personal('/v/abcdefgh/r1/v0/3.m4s?token=t'), '1');
    assert.equal(personal('/v/abcdefgh/r1/v0/3.m4s?sid=s'), '1');
    assert.equal(personal('/v/abcdefgh/r1/v0/3.cenc.m4s?token=t'), '0', 'encrypted segments are the same for all');
    assert.equal(personal('/v/abcdefgh/r1/v0/init.aes.mp4?token=t'), '0');
    assert.equal(personal('/v/abcdefgh/r1/v0/init.aes.mp4?sid=s'), '1');
    assert.equal(personal('/v/abcdefgh/r1/v0/3.m4s?'), '0');
    assert.equal(personal('/v/abcdefgh/r1/v0/3.m4s?xtoken=1&mysid=2'), '0');
    assert.equal(personal('/v/abcdefgh/master.m3u8?_HLS_msn=1'), '0');
    assert.equal(applyMap(conf, 'sc_blocking', '_HLS_msn=4&_HLS_part=1'), '1');
    assert.equal(applyMap(conf, 'sc_blocking', 'token=t&_HLS_msn=4'), '1');
    assert.equal(applyMap(conf, 'sc_blocking', 'x_HLS_msn=4'), '0');
    assert.equal(applyMap(conf, 'sc_blocking', '_HLS_skip=YES'), '0');
  });

  it('refuses origins that are not http(s)://host[:port] with nothing after', () => {
    for (const bad of [
      'ftp://h:21',
      'http://h:8080/path',
      'http://h:8080/?a=1',
      'http://h:8080#x',
      'http://user@h:8080',
      'http://h:80;',
      'http://h:80 backup',
      'http://h:80\n}',
      'http://h_x:80',
      'http://-h:80',
      'h:8080',
      'http://$host:80',
      'http://[zz::1]:80',
      '',
    ]) {
      refused({ origins: [bad] }, /--origin/);
    }
    refused({ origins: ['http://h:0'] }, /port number 1–65535/);
    refused({ origins: ['http://h:65536'] }, /port number 1–65535/);
    refused({ origins: [] }, /at least one --origin/);
    refused({ origins: ['http://h:80', 'http://H:80/'] }, /given twice/);
    refused({ origins: ['http://a:80', 'https://b:443'] }, /mix http and https/);
  });

  it('refuses ports, addresses and names that are not exactly that', () => {
    for (const bad of ['0', '65536', '80 ssl', '80;', '-1', '1e3', 'abc', '']) refused({ listen: bad }, /--listen/);
    assert.match(nginxEdgeConfig({ ...BASE, listen: '65535' }), /listen 65535;/);
    assert.match(nginxEdgeConfig({ ...BASE, listenAddress: '127.0.0.1' }), /listen 127\.0\.0\.1:8081;/);
    assert.match(nginxEdgeConfig({ ...BASE, listenAddress: '::1' }), /listen \[::1\]:8081;/);
    for (const bad of ['localhost', '127.0.0.1;', '127.0.0.1 default_server', '[::1]', '1.2.3.4:80']) {
      refused({ listenAddress: bad }, /--listen-address/);
    }
    const named = nginxEdgeConfig({ ...BASE, serverNames: ['Edge.Example.com', '*.example.org'] });
    assert.match(named, /server_name edge\.example\.com \*\.example\.org;/);
    for (const bad of ['a b', 'a;b', '$host', 'a.b}', '~^(.*)$', 'x..y', '*']) {
      refused({ serverNames: [bad] }, /--server-name/);
    }
    for (const bad of ['root;', 'a b', 'Root', 'x:y:z', ':g', 'u:$g']) refused({ user: bad }, /--user/);
    assert.match(nginxEdgeConfig({ ...BASE, user: 'nginx:www-data' }), /^user nginx www-data;$/m);
  });

  it('refuses folders that are relative, unnormalized or hold characters nginx would read', () => {
    for (const bad of [
      'cache',
      './cache',
      '/var/cache/my cache',
      '/var/cache/a;b',
      '/var/cache/$x',
      '/var/cache/"x"',
      "/var/cache/'x'",
      '/var/cache/{x}',
      '/var/cache/#x',
      '/var/cache/a\\b',
      '/var/cache/x\n',
    ]) {
      refused({ cacheDir: bad }, /--cache-dir must be an absolute path/);
    }
    refused({ cacheDir: '/var/../cache' }, /normalized/);
    refused({ cacheDir: '/var//cache' }, /normalized/);
    refused({ cacheDir: '/' }, /cannot be \//);
    refused({ prefix: 'relative' }, /--prefix must be an absolute path/);
    refused({ prefix: '/var/cache/sc/cache' }, /--prefix must not be the cache folder/);
    refused({ prefix: '/var/cache/sc/cache/state' }, /--prefix must not be the cache folder/);
    refused({ cacheDir: '/var/cache/sc/proxy-temp' }, /temp folders/);
    // A trailing slash is the same folder.
    assert.match(
      nginxEdgeConfig({ ...BASE, cacheDir: '/var/cache/sc/cache/' }),
      /proxy_cache_path \/var\/cache\/sc\/cache /,
    );
    const elsewhere = nginxEdgeConfig({ ...BASE, prefix: '/run/sc-edge' });
    assert.match(elsewhere, /^pid \/run\/sc-edge\/nginx\.pid;$/m);
    assert.match(elsewhere, /proxy_temp_path \/run\/sc-edge\/proxy-temp;/);
  });

  it('takes sizes with k, m or g of at least 1m, and sizes the keys zone from them', () => {
    for (const bad of ['10', '10t', '0g', '1.5g', '512k', '10g;', ' 10g', '-1g', 'g']) {
      refused({ maxSize: bad }, /--max-size/);
    }
    assert.equal(checkEdgeOptions({ ...BASE, maxSize: '1024k' }).maxSize, '1024k');
    assert.equal(checkEdgeOptions({ ...BASE, maxSize: '100m' }).keysZoneMb, 10);
    assert.equal(checkEdgeOptions({ ...BASE }).keysZoneMb, 21);
    assert.equal(checkEdgeOptions({ ...BASE, maxSize: '500g' }).keysZoneMb, 1024);
    assert.equal(checkEdgeOptions({ ...BASE, maxSize: '100000g' }).keysZoneMb, 2048);
  });
});
