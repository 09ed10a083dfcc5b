package dev.kiln.cli;

/**
 * The values of choice options. Constants are spelled as typed on the command line, so help
 * ({@code ${COMPLETION-CANDIDATES}}), completion scripts and man pages list them, and picocli
 * refuses anything else with the list of valid values.
 */
final class Choices {
    private Choices() {}

    /** {@code --agent-init}: how the agent starts. */
    enum AgentInit { openrc, pid1 }

    /** {@code --compress}, {@code --push-compression}: how a published image is stored. */
    enum Compress { gzip, zstd, none }

    /** {@code --pull}: when to ask the registry. */
    enum Pull { always, missing, never }

    /** {@code --vmm}: the VM monitor. */
    enum Vmm { auto, firecracker, qemu }

    /** {@code --accel}: hardware or software virtualisation. */
    enum Accel { auto, kvm, tcg }
}
