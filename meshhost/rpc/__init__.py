"""Invocations: envelopes, the router that picks a host, and the trio invoker."""

from meshhost.rpc.envelope import CHANNEL, Invocation, InvocationResult
from meshhost.rpc.invoker import Invoker
from meshhost.rpc.router import Candidate, Router

__all__ = ["CHANNEL", "Candidate", "Invocation", "InvocationResult", "Invoker", "Router"]
