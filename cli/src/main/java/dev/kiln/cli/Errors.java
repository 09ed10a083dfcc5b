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
 * Turns exceptions into one line on stderr and an exit code (DESIGN.md): 3 for bad input,
 * 5 when content does not fit, 2 for bad option values, 1 for anything unexpected.
 */
final class Errors implements CommandLine.IExecutionExceptionHandler {
    private static volatile boolean running = true;

    static void finished() {
        running = false;
    }

    static void onShutdown() {
        if (running) {
            // Interrupted (Ctrl-C): finally blocks will not run, so remove the temporary files here.
            dev.kiln.image.Build.removeTemporaryFiles();
            System.err.println("error: interrupted");
            Runtime.getRuntime().halt(Kiln.INTERRUPTED);
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
        if (ex instanceof InvalidSourceException || ex instanceof EntryException
                || ex instanceof CorruptImageException || ex instanceof EOFException
                || ex instanceof NoSuchFileException) {
            return Kiln.INVALID_INPUT;
        }
        if (ex instanceof UsageException || ex instanceof IllegalArgumentException) {
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
