package dev.kiln.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What the process writes to. The animated progress line (carriage returns and an erase-line
 * escape) is only for a human watching stderr: {@code System.console()} answers for stdin and
 * stdout, so {@code kiln build 2>build.log} from a terminal would put escape codes in the log.
 */
final class Terminal {
    private Terminal() {}

    /**
     * True when stderr is a terminal that understands escapes: fd 2 is a tty (Linux: a
     * {@code /dev/pts} or {@code /dev/tty} device), {@code TERM} is set and not {@code dumb}, and
     * neither {@code NO_COLOR} nor {@code KILN_NO_PROGRESS} is set.
     */
    static boolean stderrIsInteractive() {
        String term = System.getenv("TERM");
        if (term == null || term.isEmpty() || term.equals("dumb") || present("NO_COLOR") || present("KILN_NO_PROGRESS")) {
            return false;
        }
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty") || target.equals("/dev/console");
        } catch (java.io.IOException | UnsupportedOperationException | SecurityException e) {
            return System.console() != null; // not Linux: the best the JDK can say
        }
    }

    private static boolean present(String name) {
        String v = System.getenv(name);
        return v != null && !v.isEmpty();
    }
}
