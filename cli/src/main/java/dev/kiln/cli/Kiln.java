package dev.kiln.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code kiln} command. */
@Command(name = "kiln", versionProvider = Kiln.Version.class,
        description = "Builds bootable ext4 root file systems for Firecracker microVMs: no root, no Docker, no mkfs.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:ok", "1:internal error", "2:usage error", "3:invalid or corrupt input",
            "4:registry, network or authentication error", "5:content does not fit the requested size",
            "6:the output cannot be written (disk full, read-only or not writable)",
            "130:interrupted (SIGINT)", "143:terminated (SIGTERM)"})
public final class Kiln extends StandardOptions implements Runnable {
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

    /**
     * The subcommands by name, as class names: a command line that names one builds only that
     * command's model (picocli builds a model by reflection, a fixed start-up cost per command).
     */
    private static final String[][] SUBCOMMANDS = {
        {"build", "dev.kiln.cli.BuildCommand"}, {"inspect", "dev.kiln.cli.ImageCommands$Inspect"},
        {"ls", "dev.kiln.cli.ImageCommands$Ls"}, {"cat", "dev.kiln.cli.ImageCommands$Cat"},
        {"extract", "dev.kiln.cli.ExtractCommand"}, {"verify", "dev.kiln.cli.ImageCommands$Verify"},
        {"pull", "dev.kiln.cli.PullCommand"}, {"push", "dev.kiln.cli.PushCommand"}, {"fetch", "dev.kiln.cli.FetchCommand"},
        {"boot", "dev.kiln.cli.BootCommand"}, {"cache", "dev.kiln.cli.CacheCommand"},
        {"completion", "dev.kiln.cli.CompletionCommand"}, {"man", "dev.kiln.cli.ManCommand"},
        {"help", "picocli.CommandLine$HelpCommand"},
    };

    /**
     * Creates what picocli asks for (converters, mixins, collections), as its default factory
     * does, which is made only when a class here cannot be: that factory's static initialiser
     * looks for Groovy's {@code Closure} class in every jar (~4 ms of every start).
     */
    static final CommandLine.IFactory FACTORY = new CommandLine.IFactory() {
        @Override
        public <K> K create(Class<K> cls) throws Exception {
            if (cls.isInterface() || java.lang.reflect.Modifier.isAbstract(cls.getModifiers())) {
                return CommandLine.defaultFactory().create(cls); // List, Map, ...: picocli's choice
            }
            var c = cls.getDeclaredConstructor();
            c.setAccessible(true);
            return c.newInstance();
        }
    };

    /** The full command, every subcommand included (help, completion, man pages, tests). */
    public static CommandLine commandLine() {
        return commandLine(null);
    }

    /** The command with only the subcommand {@code only} (all when null). */
    static CommandLine commandLine(String only) {
        // A command line that starts with a subcommand's name gives the root no options and
        // never shows its help, so the root is then a bare spec named "kiln" (for "kiln build"
        // in messages and usage) rather than a model read from Kiln's annotations (interpreted
        // reflection over the root's options and subcommand list: a few ms of a small build).
        Object root = only == null || only.isEmpty() ? new Kiln()
                : CommandLine.Model.CommandSpec.wrapWithoutInspection(new Kiln(), FACTORY).name("kiln").versionProvider(new Version());
        CommandLine cl = new CommandLine(root, FACTORY) {
            @Override
            public int execute(String... args) {
                try {
                    // BuildFile (and the YAML parser behind it) is loaded only for a build file.
                    return super.execute(mentionsBuildFile(args) ? BuildFile.expand(this, args) : args);
                } catch (Errors.UsageException e) {
                    getErr().println("error: " + e.getMessage());
                    getErr().flush();
                    return USAGE;
                }
            }
        };
        for (String[] sub : SUBCOMMANDS) {
            CommandLine.Model.CommandSpec model = sub[0].equals(only) ? CommandModels.of(only) : null;
            if (model != null) {
                // The code-built model (no annotation read); help pages, man pages, completion
                // and the commands CommandModels leaves out read the annotations.
                cl.addSubcommand(sub[0], new CommandLine(model, FACTORY));
            } else if (only == null || sub[0].equals(only)) {
                try {
                    cl.addSubcommand(sub[0], FACTORY.create(Class.forName(sub[1])));
                } catch (Exception e) {
                    throw new IllegalStateException("kiln " + sub[0] + ": " + e, e);
                }
            }
        }
        giveVersion(cl, cl.getCommandSpec().versionProvider());
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

    /** Every subcommand prints kiln's version for {@code -V}, as the root does. */
    private static void giveVersion(CommandLine cl, CommandLine.IVersionProvider version) {
        for (CommandLine sub : cl.getSubcommands().values()) {
            sub.getCommandSpec().versionProvider(version);
            giveVersion(sub, version);
        }
    }

    public static void main(String[] args) {
        Runtime.getRuntime().addShutdownHook(new Thread(Errors::onShutdown));
        // Off the main thread while picocli builds the command model (~45 ms, all interpreted):
        // the SIGTERM handler (reflection and a proxy class) and the JDK's security providers,
        // which the first SHA-256 (the build's content digest) initialises (~10 ms).
        // picocli registers converters for java.sql and java.time types by reflection whenever it
        // builds a command (~4 ms at start); kiln's options use neither.
        if (System.getProperty("picocli.converters.excludes") == null) {
            System.setProperty("picocli.converters.excludes", "java\\.(sql|time)\\..*");
        }
        String only = subcommand(args);
        if ("".equals(only)) {
            // kiln --version: the version's one line, as picocli prints it, without the root's
            // annotated model (~40 ms of annotation parsing for one line of text).
            int code = printVersion();
            Errors.finished();
            System.exit(code);
        }
        Thread early = new Thread(() -> {
            Errors.watchTerm();
            if ("build".equals(only)) {
                try {
                    java.security.MessageDigest.getInstance("SHA-256");
                } catch (java.security.NoSuchAlgorithmException e) {
                    // the build reports it where it needs one
                }
            }
        }, "kiln-start");
        early.setDaemon(true);
        early.start();
        int code = commandLine(only).execute(args);
        code = trainingRuns(code);
        Errors.finished();
        System.exit(code);
    }

    private static int printVersion() {
        try {
            for (String line : new Version().getVersion()) {
                System.out.println(line);
            }
            System.out.flush();
            return System.out.checkError() ? CANNOT_WRITE : OK;
        } catch (IOException e) {
            System.err.println("error: kiln's version: " + e.getMessage());
            return INTERNAL;
        }
    }

    /**
     * The launchers' training run: the class-data-sharing archive of {@code ./kiln} and the
     * release's ahead-of-time cache hold the classes one process loaded, and one build takes one
     * base, so {@code -Dkiln.training.then=FILE} names further commands (one a line, its words
     * separated by tabs) run in the same process after the first. Without it a {@code dir:} build
     * parsed and verified ~140 classes at run time (the walk's, {@code ProcessBuilder}'s) that the
     * {@code tar:} training build never loaded: 25-45 ms of CPU.
     */
    private static int trainingRuns(int code) {
        String then = System.getProperty("kiln.training.then");
        if (then == null || code != 0) {
            return code;
        }
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of(then))) {
                if (!line.isBlank()) {
                    String[] next = line.split("\t");
                    code = commandLine(subcommand(next)).execute(next);
                    if (code != 0) {
                        return code;
                    }
                }
            }
        } catch (java.io.IOException e) {
            System.err.println("error: " + then + ": " + e.getMessage());
            return USAGE;
        }
        return code;
    }

    private static boolean mentionsBuildFile(String[] args) {
        for (String a : args) {
            if (a.equals("-f") || a.startsWith("--file") || (a.startsWith("-f") && !a.startsWith("--"))) {
                return true;
            }
        }
        return false;
    }

    /** The subcommand the arguments name first, when only it is needed; else null (all). */
    static String subcommand(String[] args) {
        if (args.length == 1 && (args[0].equals("--version") || args[0].equals("-V"))) {
            return ""; // the version needs no subcommand at all
        }
        if (args.length == 0 || args[0].startsWith("-") || args[0].startsWith("@") || args[0].equals("help")) {
            return null;
        }
        for (String[] sub : SUBCOMMANDS) {
            if (sub[0].equals(args[0])) {
                return sub[0];
            }
        }
        return null;
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
