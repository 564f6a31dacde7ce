"""Throughput benchmarks that compare against a peer in the same process and print tables."""
