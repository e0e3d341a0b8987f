"""The simulated OpenAI-compatible endpoint (NOT a model): a test server for the demo, the tests and
the benchmarks. It answers synthetic samples from their ground truth and can behave like a broken
real server on request. It lives apart from `curation/llm/` (the production gateway) on purpose.

- `server.py`: the HTTP app, `running_sim_server(...)`, `videorft sim-server`
- `config.py`: `SimConfig`, latency profiles, fault rates, the planted-choice rules
- `scene.py`: scene ground truth from a synthetic sample's `meta`
- `answers.py`: what each stage's answer looks like for a sample
"""
