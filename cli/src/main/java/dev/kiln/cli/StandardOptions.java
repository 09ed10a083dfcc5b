package dev.kiln.cli;

import picocli.CommandLine.Option;

/**
 * {@code -h/--help} and {@code -V/--version} as plain fields of every command. picocli's
 * {@code mixinStandardHelpOptions} gives the same two options, but builds a separate command
 * model by reflection for them in every command, and that was ~20 ms of the interpreted start
 * of every kiln run (two commands are built for any run). The version text comes from
 * {@link Kiln.Version}, which {@link Kiln#commandLine} gives every subcommand, so
 * {@code kiln build -V} prints it too. {@code order} keeps them last in a help listed in declaration order.
 */
abstract class StandardOptions {
    @Option(names = {"-h", "--help"}, usageHelp = true, order = 1000, description = "Show this help message and exit.")
    boolean helpRequested;

    @Option(names = {"-V", "--version"}, versionHelp = true, order = 1001, description = "Print version information and exit.")
    boolean versionRequested;
}
