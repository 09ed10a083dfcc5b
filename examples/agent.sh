#!/bin/sh
# A stand-in for the Nex agent, for trying kiln on a machine that has no agent binary. Started
# as PID 1 (--agent-init pid1), it says it is up, then echoes each line typed on the console.
# PID 1 must never exit (the kernel panics when it does): reading the serial console blocks
# for as long as the VM runs.
echo "agent: up as PID $$"
while read -r line; do
  echo "agent: $line"
done
