// Debian packages that the test suite drives as real peers (Python Thrift and protobuf
// clients, protoc to generate the protobuf client's bindings, the Thrift compiler the
// README's walk-through uses in test/install, and haproxy in front of kmux processes).
// They are installed with apt when missing; without root or apt the tests that need
// them fail loudly, naming the package.
import { spawnSync } from 'node:child_process';

/** Debian package → a command that succeeds when it is usable. */
const NEEDED = {
  'python3-thrift': ['/usr/bin/python3', ['-c', 'import thrift']],
  'python3-protobuf': ['/usr/bin/python3', ['-c', 'import google.protobuf']],
  'protobuf-compiler': ['protoc', ['--version']],
  'thrift-compiler': ['thrift', ['--version']],
  haproxy: ['/usr/sbin/haproxy', ['-v']],
};

function usable([cmd, args]) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

export function ensureDebianPackages() {
  const missing = Object.entries(NEEDED).filter(([, check]) => !usable(check)).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.warn(`bootstrap: not root, cannot install ${missing.join(' ')}; tests that need them will fail`);
    return;
  }
  console.log(`bootstrap: installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env }).status === 0;
  if (install()) return;
  spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
  if (!install()) {
    console.error(`bootstrap: apt-get could not install ${missing.join(' ')}`);
    process.exit(1);
  }
}
