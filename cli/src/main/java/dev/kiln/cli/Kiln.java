package dev.kiln.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code kiln} command. */
@Command(name = "kiln", mixinStandardHelpOptions = true, versionProvider = Kiln.Version.class,
        description = "Builds bootable ext4 root file systems for Firecracker microVMs: no root, no Docker, no mkfs.",
        subcommands = {BuildCommand.class, ImageCommands.Inspect.class, ImageCommands.Ls.class,
            ImageCommands.Cat.class, ExtractCommand.class, ImageCommands.Verify.class, PullCommand.class, PushCommand.class,
            FetchCommand.class, BootCommand.class, CacheCommand.class, CompletionCommand.class, ManCommand.class,
            CommandLine.HelpCommand.class},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:ok", "1:internal error", "2:usage error", "3:invalid or corrupt input",
            "4:registry, network or authentication error", "5:content does not fit the requested size",
            "6:the output cannot be written (disk full, read-only or not writable)",
            "130:interrupted (SIGINT)", "143:terminated (SIGTERM)"})
public final class Kiln implements Runnable {
    public static final int OK = 0;
    public static final int INTERNAL = 1;
    public static final int USAGE = 2;
    public static final int INVALID_INPUT = 3;
    public static final int NETWORK = 4;
    public static final int DOES_NOT_FIT = 5;
    public static final int CANNOT_WRITE = 6;
    public static final int INTERRUPTED = 130;
    public static final int TERMINATED = 143;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command; try 'kiln build --help'");
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Kiln()) {
            @Override
            public int execute(String... args) {
                try {
                    return super.execute(BuildFile.expand(this, args));
                } catch (Errors.UsageException e) {
                    getErr().println("error: " + e.getMessage());
                    getErr().flush();
                    return USAGE;
                }
            }
        };
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        // A build file's options come first, the command line's after: the later value wins.
        cl.setOverwrittenOptionsAllowed(true);
        cl.setExecutionExceptionHandler(new Errors());
        cl.setParameterExceptionHandler((ex, args) -> {
            ex.getCommandLine().getErr().println("error: " + ex.getMessage());
            ex.getCommandLine().getErr().println("try '" + ex.getCommandLine().getCommandSpec().qualifiedName()
                    + " --help' for usage");
            return USAGE;
        });
        return cl;
    }

    public static void main(String[] args) {
        Errors.watchTerm();
        Runtime.getRuntime().addShutdownHook(new Thread(Errors::onShutdown));
        int code = commandLine().execute(args);
        Errors.finished();
        System.exit(code);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws IOException {
            Properties p = new Properties();
            try (InputStream in = Kiln.class.getResourceAsStream("/kiln-version.properties")) {
                if (in != null) {
                    p.load(in);
                }
            }
            return new String[] {"kiln " + p.getProperty("version", "unknown")};
        }
    }
}
