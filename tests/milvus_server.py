"""A Milvus standalone server for the tests: the ``milvus`` package's
embedded server (Milvus 2.3 with its own etcd and local storage), on a free
port and a data folder of its own, which the fault drills kill with SIGKILL
and start again on the same folder and port."""

import os
import re
import shutil
import signal
import socket

# Settings of the test server, for short tests. The proxy's time tick paces
# every read at "Strong" consistency (each waits for the next tick): 200 ms
# by default. A restarted server loads its collections again only once the
# etcd sessions of its killed self expire: 30 s by default.
TUNED = {"timeTickInterval": 20, "ttl": 10}


def free_port():
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid):
    """The pids of the processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


class Server:
    """One Milvus server in ``base_dir``, listening on ``port``.

    Parameters
    ----------
    base_dir : str
        Its data folder (binaries, configuration, etcd, segments, logs).
    port : int, default=None
        The port of its gRPC proxy (None: a free one). A restart keeps it, so
        a retriever saved before finds the server again.
    """

    def __init__(self, base_dir, port=None):
        self.base_dir = str(base_dir)
        self.port = port or free_port()
        self._server = None
        self._etcd_ports = None

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Start the server and wait until it answers (about 10 s)."""
        import milvus

        class Config(milvus.MilvusServerConfig):
            def try_bind_port(self, port):
                # the package binds to check a port is free, without
                # SO_REUSEADDR: the connections the killed server left in
                # TIME_WAIT would refuse its own port on a restart
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                    sock.listen()
                    return sock
                except OSError:
                    sock.close()
                    return None

            def write_config(self):
                # the embedded etcd listens on 2379 and 2380 unless given a
                # configuration file: one server per machine. Each test
                # server gets ports of its own (kept over restarts).
                super().write_config()
                path = os.path.join(self.base_data_dir, "configs", "milvus.yaml")
                with open(path) as f:
                    text = f.read()
                text = text.replace("\netcd:\n", "\netcd:\n  config:\n"
                                    f"    path: {etcd_config}\n", 1)
                for key, value in TUNED.items():
                    text = re.sub(rf"(\n\s+{key}:) \d+", rf"\1 {value}", text)
                with open(path, "w") as f:
                    f.write(text)

        etcd_config = self._etcd_config()
        server = milvus.MilvusServer(Config(), proxy_port=self.port)
        server.set_base_dir(self.base_dir)
        self._server = server
        server.start()
        return self

    def _etcd_config(self):
        """The embedded etcd's configuration file, on ports of its own."""
        if self._etcd_ports is None:
            self._etcd_ports = free_port(), free_port()
        client, peer = (f"http://127.0.0.1:{p}" for p in self._etcd_ports)
        os.makedirs(os.path.join(self.base_dir, "configs"), exist_ok=True)
        path = os.path.join(self.base_dir, "configs", "etcd.yaml")
        with open(path, "w") as f:
            f.write(f"name: default\nlisten-client-urls: {client}\n"
                    f"advertise-client-urls: {client}\nlisten-peer-urls: {peer}\n"
                    f"initial-advertise-peer-urls: {peer}\n"
                    f"initial-cluster: default={peer}\n")
        return path

    @property
    def pids(self):
        """The server's processes: the ``milvus run standalone`` process
        (etcd runs inside it) and any children it started."""
        if self._server is None or self._server.server_proc is None:
            return []
        pid = self._server.server_proc.pid
        return [pid, *_children(pid)]

    def kill(self):
        """SIGKILL every process of the server, as a crash would."""
        pids = self.pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pids:
            self._server.server_proc.wait(timeout=30)
            self._close()

    def stop(self):
        """Stop the server (SIGTERM, then SIGKILL after a second)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def remove(self):
        """Delete the data folder (its binaries alone take 250 MB)."""
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _close(self):
        # the package's stop() would signal a dead process; close its logs
        self._server.server_proc = None
        self._server.stop()
        self._server = None
