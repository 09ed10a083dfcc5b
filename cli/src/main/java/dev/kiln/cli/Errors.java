package dev.kiln.cli;

import dev.kiln.ext4.CapacityExceededException;
import dev.kiln.ext4.CorruptImageException;
import dev.kiln.ext4.EntryException;
import dev.kiln.image.InvalidSourceException;
import java.io.EOFException;
import java.io.PrintWriter;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;

/**
 * Turns exceptions into one line on stderr and an exit code (docs/ARCHITECTURE.md): 3 for bad
 * input, 4 for the registry or network, 5 when content does not fit, 6 when the output cannot
 * be written, 2 for bad option values only, 1 for anything unexpected (a bug).
 */
final class Errors implements CommandLine.IExecutionExceptionHandler {
    private static volatile boolean running = true;

    static void finished() {
        running = false;
    }

    /** The exit code of the signal that ends the process: SIGINT unless SIGTERM was seen. */
    private static volatile int signalExit = Kiln.INTERRUPTED;

    /**
     * SIGTERM exits 143 (128 + 15) and SIGINT 130, as shells and service managers expect. The
     * JVM runs the same shutdown hooks for both and does not say which signal it was, so
     * SIGTERM gets a handler that records it first (sun.misc.Signal, through reflection: it is
     * in jdk.unsupported, reachable from the class path on every JDK). SIGINT keeps the JVM's
     * own handling, which also respects an inherited "ignore".
     */
    static void watchTerm() {
        try {
            Class<?> signal = Class.forName("sun.misc.Signal");
            Class<?> handler = Class.forName("sun.misc.SignalHandler");
            Object term = signal.getConstructor(String.class).newInstance("TERM");
            Object h = java.lang.reflect.Proxy.newProxyInstance(handler.getClassLoader(), new Class<?>[] {handler},
                    (proxy, method, args) -> {
                        if (method.getName().equals("handle")) {
                            signalExit = Kiln.TERMINATED;
                            new Thread(() -> System.exit(Kiln.TERMINATED), "kiln-sigterm").start();
                        }
                        return null;
                    });
            signal.getMethod("handle", signal, handler).invoke(null, term, h);
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            // No sun.misc.Signal here: SIGTERM then exits as SIGINT does.
        }
    }

    static void onShutdown() {
        if (running) {
            // Interrupted (Ctrl-C, SIGTERM): finally blocks will not run, so remove the temporary files here.
            dev.kiln.image.Build.removeTemporaryFiles();
            System.err.println(signalExit == Kiln.TERMINATED ? "error: terminated" : "error: interrupted");
            Runtime.getRuntime().halt(signalExit);
        }
    }

    @Override
    public int handleExecutionException(Exception ex, CommandLine cl, CommandLine.ParseResult parsed) {
        PrintWriter err = cl.getErr();
        boolean trace = parsed.hasMatchedOption("--stacktrace")
                || (parsed.subcommand() != null && parsed.subcommand().hasMatchedOption("--stacktrace"));
        int code = code(ex);
        err.println("error: " + message(ex));
        if (trace) {
            ex.printStackTrace(err);
        }
        err.flush();
        return code;
    }

    static int code(Throwable ex) {
        if (ex instanceof CapacityExceededException) {
            return Kiln.DOES_NOT_FIT;
        }
        if (ex instanceof dev.kiln.image.registry.RegistryException) {
            return Kiln.NETWORK;
        }
        if (ex instanceof dev.kiln.image.OutputException) {
            return Kiln.CANNOT_WRITE;
        }
        if (ex instanceof InvalidSourceException || ex instanceof EntryException
                || ex instanceof CorruptImageException || ex instanceof EOFException
                || ex instanceof NoSuchFileException) {
            return Kiln.INVALID_INPUT;
        }
        if (ex instanceof UsageException || ex instanceof CommandLine.ParameterException) {
            // Only option errors; any other IllegalArgumentException is a bug (exit 1).
            return Kiln.USAGE;
        }
        if (ex.getCause() instanceof CapacityExceededException c) {
            return code(c);
        }
        return Kiln.INTERNAL;
    }

    static String message(Throwable ex) {
        if (ex instanceof CapacityExceededException c) {
            String m = c.getMessage();
            if (c.blocksNeeded() > 0 || c.inodesNeeded() > 0) {
                m += "; use a larger --size (or --size auto)";
            }
            return m;
        }
        if (ex instanceof NoSuchFileException n) {
            return n.getFile() + ": no such file; check the path";
        }
        if (ex instanceof AccessDeniedException a) {
            return a.getFile() + ": permission denied";
        }
        if (ex instanceof EOFException) {
            return ex.getMessage() + "; the input is truncated";
        }
        String m = ex.getMessage();
        return m == null ? ex.getClass().getSimpleName() + " (run with --stacktrace for details)" : m;
    }

    /** A bad combination of options found after parsing. */
    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }
}
