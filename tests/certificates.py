"""Test certificates, made with the openssl CLI."""
import subprocess


def make_certificates(folder, name="relay.test", days=30, extra_names=()):
    """A test CA (ca.pem) and a server certificate (cert.pem, key.pem) for
    `name` (and `extra_names`) and 127.0.0.1; a negative `days` makes it
    already expired."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
        "-subj", "/CN=Relais Test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "server.csr", "-subj", f"/CN={name}")
    names = ",".join(f"DNS:{n}" for n in (name, *extra_names))
    (folder / "san.ext").write_text(f"subjectAltName={names},IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "cert.pem", "-days", str(days), "-extfile", "san.ext")
    return folder / "ca.pem"
