"""Two sidecar builds in one run: the 100 KB agent turn passed through and translated (both ways), CPU per
request against the same bare proxy and p50 added over it, alternating the order every round
(a shared machine's speed moves from run to run; a change is judged within one run).

    cargo build --release -p switchyard-sidecar -p switchyard-bench
    SIDE_BINS=/tmp/sidecar-before:target/release/switchyard-sidecar python3 bench/ab.py

ROUNDS and DURATION as for run.sh; SMALL=1 adds the small request.
"""

import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402


def main():
    bins = os.environ["SIDE_BINS"].split(":")
    work = Path(tempfile.mkdtemp())
    procs = []
    spawn = R.spawner(procs)
    try:
        up, bare, bare_p = R.start_floor(spawn)
        config = work / "ab.yaml"
        config.write_text(R.sidecar_config(up))
        # The OpenAI-shaped turn for the model the Anthropic upstream serves.
        to_claude = work / "agentic-openai-to-claude.json"
        to_claude.write_text((R.ROOT / "bench" / "payloads" / "agentic-openai.json").read_text()
                             .replace('"model": "bench"', '"model": "bench-claude"', 1))
        env = {**os.environ, "BENCH_KEY": "sk-bench", "RUST_LOG": "warn"}
        def target(name, script, port, path, p):
            return (name, f"http://127.0.0.1:{port}{path}", script, p.pid)

        targets = [target("bare", "agentic-openai.json", bare, "/v1/chat/completions", bare_p)]
        if os.environ.get("SMALL"):
            targets.append(target("bare, small", "openai.lua", bare, "/v1/chat/completions", bare_p))
        sides = []
        for i, binary in enumerate(bins):
            port, admin = R.free_port(), R.free_port()
            p = spawn([binary, "--config", str(config), "--listen", f"127.0.0.1:{port}",
                       "--admin-listen", f"127.0.0.1:{admin}"], env=env)
            R.wait_port(port)
            sides.append((port, p))
            targets.append(target(f"{i} passthrough", "agentic-openai.json", port, "/v1/chat/completions", p))
            targets.append(target(f"{i} translated", "agentic-anthropic.json", port, "/v1/messages", p))
            targets.append(target(f"{i} to Anthropic", str(to_claude), port, "/v1/chat/completions", p))
            if os.environ.get("SMALL"):
                targets.append(target(f"{i} passthrough, small", "openai.lua", port, "/v1/chat/completions", p))
        med = R.measure(targets)
        print(f"{R.ROUNDS} rounds x {R.DURATION}s, medians; sidecars: " +
              ", ".join(f"{i} = {b}" for i, b in enumerate(bins)))
        for conns in (1, 16):
            for name, _, script, _ in targets:
                floor = med[("bare, small" if script == "openai.lua" else "bare", conns)]
                cpu, p50 = med[(name, conns)]["cpu_us"], med[(name, conns)]["p50"]
                print(f"{conns:2} conns  {name:24} CPU {cpu:7.1f} µs ({cpu / floor['cpu_us']:.2f}x)  "
                      f"p50 {p50:6.0f} µs (+{p50 - floor['p50']:.0f})")
        for i, (port, p) in enumerate(sides):
            loaded = R.rss_mib(p.pid)
            held = asyncio.run(R.held_rss(port, 1000, p.pid))
            print(f"sidecar {i}: RSS {loaded:.1f} MiB after the load, {held:.1f} MiB with 1,000 open streams")
    finally:
        for p in procs:
            p.kill()


if __name__ == "__main__":
    main()
