"""What an operator watches: structured logs, Prometheus metrics and OpenTelemetry traces, one
setup each for the API and the worker (`logs`, `metrics`, `tracing`), and the Temporal
interceptor that carries a request's id into the workflows and activities it starts."""
