#!/usr/bin/env python3
"""Speech quality of Tincan and baresip calls, measured with PESQ (ITU-T P.862.2 wideband).

Run through scripts/bench-pesq.sh (which installs what this needs). Subcommands:

  pesq_bench.py speech DIR             espeak-ng speech: DIR/ref16k.wav (the reference, 16 kHz
                                       mono) and DIR/send48.wav (the same at 48 kHz stereo, what
                                       both phones send: baresip's aufile needs that format)
  pesq_bench.py score REF DEGRADED     PESQ-WB of DEGRADED (any rate and channel count; aligned
                                       and trimmed to REF first) against REF; prints the score
  pesq_bench.py table [options]        the benchmark: calls in two network namespaces, caller
                                       (192.0.2.1) sends the speech, callee (192.0.2.2) records;
                                       loss by nftables on the callee's input hook (RTP and RTCP
                                       only: the SIP port is spared); prints a markdown table

Needs root (network namespaces, nftables), espeak-ng, sox, baresip, and `pip install pesq numpy
scipy`. Everything started is stopped by PID; the namespaces are deleted on exit.
"""

import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import wave

SENTENCES = (
    "The birch canoe slid on the smooth planks. "
    "Glue the sheet to the dark blue background. "
    "It is easy to tell the depth of a well. "
    "These days a chicken leg is a rare dish."
)

NS_A, NS_B = "pesq-a", "pesq-b"
ADDR_A, ADDR_B = "192.0.2.1", "192.0.2.2"  # RFC 5737 documentation range
SIP_PORT = 5060


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Audio


def read_wav(path):
    """(samples as float64 mono numpy array, rate)."""
    import numpy as np

    with wave.open(path, "rb") as w:
        rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        data = w.readframes(n)
    if width != 2:
        raise ValueError(f"{path}: {width * 8}-bit samples, want 16-bit PCM")
    x = np.frombuffer(data, dtype="<i2").astype(np.float64)
    if ch > 1:
        x = x[: len(x) // ch * ch].reshape(-1, ch).mean(axis=1)
    return x, rate


def to_16k(x, rate):
    from math import gcd

    from scipy.signal import resample_poly

    if rate == 16000:
        return x
    g = gcd(rate, 16000)
    return resample_poly(x, 16000 // g, rate // g)


def align(ref, deg):
    """`deg` shifted so that it lines up with `ref` (cross-correlation), trimmed or padded with
    zeros to `ref`'s length."""
    import numpy as np
    from scipy.signal import correlate

    if len(deg) == 0:
        return np.zeros_like(ref)
    c = correlate(deg, ref, mode="full", method="fft")
    lag = int(np.argmax(c)) - (len(ref) - 1)
    out = np.zeros_like(ref)
    if lag >= 0:
        seg = deg[lag : lag + len(ref)]
        out[: len(seg)] = seg
    else:
        seg = deg[: len(ref) + lag]
        out[-lag : -lag + len(seg)] = seg
    return out


def score(ref_path, deg_path):
    """PESQ-WB (P.862.2) of the recording `deg_path` against `ref_path` (16 kHz)."""
    from pesq import pesq

    ref, rate = read_wav(ref_path)
    ref = to_16k(ref, rate)
    deg, drate = read_wav(deg_path)
    deg = align(ref, to_16k(deg, drate))
    try:
        return float(pesq(16000, ref, deg, "wb"))
    except Exception as e:  # NoUtterancesError etc.: nothing usable arrived
        log(f"  pesq failed on {deg_path}: {e}")
        return float("nan")


def make_speech(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    raw = os.path.join(out_dir, "espeak.wav")
    ref = os.path.join(out_dir, "ref16k.wav")
    send = os.path.join(out_dir, "send48.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", raw, SENTENCES], check=True)
    # 0.3 s of silence before the speech, 0.5 s after; -3 dB headroom.
    subprocess.run(
        ["sox", raw, "-r", "16000", "-c", "1", "-b", "16", ref, "gain", "-n", "-3",
         "pad", "0.3", "0.5"],
        check=True,
    )
    # What is sent: the reference and 1 s more of silence (the callers hang up at its end).
    subprocess.run(["sox", ref, "-r", "48000", "-c", "2", "-b", "16", send, "pad", "0", "1"],
                   check=True)
    x, rate = read_wav(ref)
    return ref, send, len(x) / rate


# ---------------------------------------------------------------------------------------------
# Network namespaces


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def ns_down():
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "del", ns, check=False)


def ns_up():
    ns_down()
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", "pesq-va", "type", "veth", "peer", "name", "pesq-vb")
    sh("ip", "link", "set", "pesq-va", "netns", NS_A, "name", "eth0")
    sh("ip", "link", "set", "pesq-vb", "netns", NS_B, "name", "eth0")
    for ns, addr in ((NS_A, ADDR_A), (NS_B, ADDR_B)):
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")


def set_loss(percent):
    """Drops `percent` % of the UDP packets arriving at the callee, except SIP."""
    sh("ip", "netns", "exec", NS_B, "nft", "delete", "table", "inet", "pesq", check=False)
    if percent <= 0:
        return
    sh("ip", "netns", "exec", NS_B, "nft", "add", "table", "inet", "pesq")
    sh("ip", "netns", "exec", NS_B, "nft", "add", "chain", "inet", "pesq", "in",
       "{ type filter hook input priority 0; }")
    sh("ip", "netns", "exec", NS_B, "nft", "add", "rule", "inet", "pesq", "in",
       "udp", "dport", "!=", str(SIP_PORT), "numgen", "random", "mod", "100", "<",
       str(percent), "counter", "drop")


def dropped():
    out = sh("ip", "netns", "exec", NS_B, "nft", "list", "table", "inet", "pesq",
             check=False).stdout
    for word in out.split("packets")[1:]:
        return int(word.split()[0])
    return 0


# ---------------------------------------------------------------------------------------------
# Processes


class Proc:
    """A process in a namespace, its output in a file; stopped by PID."""

    def __init__(self, ns, args, cwd, name, env=None):
        self.log_path = os.path.join(cwd, f"{name}.log")
        self.log = open(self.log_path, "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(["ip", "netns", "exec", ns] + args, cwd=cwd,
                                  stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                  start_new_session=True)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_for(self, needle, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.text():
                return True
            if self.p.poll() is not None:
                return needle in self.text()
            time.sleep(0.05)
        return False

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.p.poll() is None:
            # `ip netns exec` execs the program: the PID is the program's.
            self.p.send_signal(signal.SIGTERM)
            if self.wait(3) is None:
                self.p.kill()
                self.p.wait()
        self.log.close()


def tincan_call(binary, codec, ref, send, seconds, run_dir):
    """Tincan calls Tincan: the callee's recording."""
    env = {"XDG_DATA_HOME": os.path.join(run_dir, "data"),
           "XDG_CONFIG_HOME": os.path.join(run_dir, "config"),
           "HOME": run_dir}
    config = os.path.join(run_dir, "config.toml")
    open(config, "w").close()
    silence = os.path.join(run_dir, "silence.wav")
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", silence, "trim", "0", "1"],
                   check=True)
    rec = os.path.join(run_dir, "rec.wav")
    callee = Proc(NS_B, [binary, "--config", config, "listen", "--bind",
                         f"{ADDR_B}:{SIP_PORT}", "--auto-answer", "--max-calls", "1",
                         "--play", silence, "--record", rec, "--json"], run_dir, "callee", env)
    caller = None
    try:
        if not callee.wait_for('"listening"', 20):
            raise RuntimeError(f"tincan listen did not start:\n{callee.text()}")
        caller = Proc(NS_A, [binary, "--config", config, "call", f"sip:bob@{ADDR_B}:{SIP_PORT}",
                             "--codec", codec, "--play", send, "--duration",
                             str(math.ceil(seconds + 1.5)), "--bind", f"{ADDR_A}:0", "--json"],
                      run_dir, "caller", env)
        if caller.wait(seconds + 30) is None:
            raise RuntimeError(f"tincan call did not end:\n{caller.text()}")
        callee.wait(10)
    finally:
        if caller:
            caller.stop()
        callee.stop()
    return rec


BARESIP_CODECS = {"opus": "opus/48000/2", "g722": "G722/16000/1", "pcmu": "PCMU/8000/1"}


def baresip_config(template, run_dir, name, addr, source):
    os.makedirs(os.path.join(run_dir, name, "rec"), exist_ok=True)
    lines = []
    for line in open(template):
        key = line.split()[0] if line.split() else ""
        if key == "sip_listen":
            line = f"sip_listen\t\t{addr}:{SIP_PORT}\n"
        elif key == "net_interface":
            line = "net_interface\t\teth0\n"
        elif key == "audio_source":
            line = f"audio_source\t\taufile,{source}\n"
        elif key == "rtp_ports":
            line = "rtp_ports\t\t20000-20099\n"
        elif key == "ctrl_tcp_listen":
            line = "ctrl_tcp_listen\t\t127.0.0.1:4444\n"
        lines.append(line)
    conf_dir = os.path.join(run_dir, name)
    with open(os.path.join(conf_dir, "config"), "w") as f:
        f.writelines(lines)
    return conf_dir


def baresip_call(template, codec, ref, send, seconds, run_dir):
    """baresip calls baresip: the callee's recording (sndfile's `*-dec.wav`). The caller's
    `aufile` source ends the call at the end of the file (baresip hangs up on its audio
    source's end of file), so the callee sends silence for longer than that."""
    silence = os.path.join(run_dir, "silence.wav")
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "16", silence, "trim", "0",
                    str(math.ceil(seconds + 30))], check=True)
    codecs = BARESIP_CODECS[codec]
    b_dir = baresip_config(template, run_dir, "bob", ADDR_B, silence)
    with open(os.path.join(b_dir, "accounts"), "w") as f:
        f.write(f"<sip:bob@{ADDR_B}>;regint=0;answermode=auto;audio_codecs={codecs}\n")
    a_dir = baresip_config(template, run_dir, "alice", ADDR_A, send)
    with open(os.path.join(a_dir, "accounts"), "w") as f:
        f.write(f"<sip:alice@{ADDR_A}>;regint=0;answermode=manual;audio_codecs={codecs}\n")
    callee = Proc(NS_B, ["baresip", "-f", b_dir], b_dir, "baresip")
    caller = None
    try:
        if not callee.wait_for("baresip is ready", 20):
            raise RuntimeError(f"baresip (callee) did not start:\n{callee.text()}")
        caller = Proc(NS_A, ["baresip", "-f", a_dir, "-e", f"/dial sip:bob@{ADDR_B}:{SIP_PORT}"],
                      a_dir, "baresip")
        if not caller.wait_for("terminated", seconds + 30):
            raise RuntimeError(f"baresip (caller) did not hang up:\n{caller.text()}")
        callee.wait_for("terminated", 5)
    finally:
        if caller:
            caller.stop()
        callee.stop()
    recs = sorted(f for f in os.listdir(os.path.join(b_dir, "rec")) if f.endswith("-dec.wav"))
    if not recs:
        raise RuntimeError(f"baresip recorded nothing:\n{callee.text()}")
    return os.path.join(b_dir, "rec", recs[-1])


# ---------------------------------------------------------------------------------------------
# The table


def table(args):
    if os.geteuid() != 0:
        sys.exit("pesq_bench.py table: needs root (network namespaces, nftables)")
    # SIGTERM and SIGINT (ignored in a background job) end the run through the `finally`
    # blocks: every process stopped, the namespaces deleted.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit("pesq_bench.py: stopped"))
    work = tempfile.mkdtemp(prefix="tincan-pesq-")
    ref, send, seconds = make_speech(os.path.join(work, "speech"))
    log(f"speech: {seconds:.1f} s at 16 kHz ({ref}); scratch {work}")
    impls = [i for i in args.impls.split(",") if i]
    results = {}
    ns_up()
    try:
        for codec in args.codecs.split(","):
            for loss in [int(x) for x in args.losses.split(",")]:
                set_loss(loss)
                for impl in impls:
                    scores = []
                    for run in range(args.runs):
                        run_dir = os.path.join(work, f"{impl}-{codec}-{loss}-{run}")
                        os.makedirs(run_dir)
                        start = time.monotonic()
                        before = dropped()
                        try:
                            if impl == "tincan":
                                rec = tincan_call(args.tincan, codec, ref, send, seconds, run_dir)
                            else:
                                rec = baresip_call(args.baresip_template, codec, ref, send,
                                                   seconds, run_dir)
                            s = score(ref, rec)
                        except RuntimeError as e:
                            log(f"  {impl} {codec} {loss}% run {run}: failed: {e}")
                            s = float("nan")
                        scores.append(s)
                        log(f"  {impl:7} {codec:4} {loss:2}% run {run}: PESQ-WB {s:.2f} "
                            f"({dropped() - before} packets dropped, "
                            f"{time.monotonic() - start:.0f} s)")
                    valid = [s for s in scores if not math.isnan(s)]
                    results[(impl, codec, loss)] = statistics.median(valid) if valid else math.nan
    finally:
        set_loss(0)
        ns_down()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print_table(results, impls, args)


def print_table(results, impls, args):
    cols = " | ".join(impls)
    ratio = " | Tincan/baresip" if impls == ["tincan", "baresip"] else ""
    print(f"| codec | loss | {cols}{ratio} |")
    print("|---|---|" + "---|" * (len(impls) + (1 if ratio else 0)))
    for codec in args.codecs.split(","):
        for loss in [int(x) for x in args.losses.split(",")]:
            vals = [results.get((i, codec, loss), math.nan) for i in impls]
            row = f"| {codec} | {loss} % | " + " | ".join(f"{v:.2f}" for v in vals)
            if ratio:
                t, b = vals
                row += f" | {t / b:.2f}" if b and not math.isnan(b) else " | -"
            print(row + " |")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speech")
    s.add_argument("dir")
    s = sub.add_parser("score")
    s.add_argument("ref")
    s.add_argument("degraded")
    t = sub.add_parser("table")
    t.add_argument("--tincan", required=True, help="the tincan binary")
    t.add_argument("--baresip-template", required=True, help="interop-tests/lab/baresip/alice/config")
    t.add_argument("--codecs", default="opus,g722,pcmu")
    t.add_argument("--losses", default="0,5,10,20")
    t.add_argument("--impls", default="tincan,baresip")
    t.add_argument("--runs", type=int, default=3)
    t.add_argument("--keep", action="store_true", help="keep the scratch directory")
    a = p.parse_args()
    if a.cmd == "speech":
        ref, send, seconds = make_speech(a.dir)
        print(f"{ref} {send} {seconds:.2f}")
    elif a.cmd == "score":
        print(f"{score(a.ref, a.degraded):.3f}")
    else:
        table(a)


if __name__ == "__main__":
    main()
