package dev.kiln.image;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/** Small helpers for running host tools with a deadline that can really fire. */
public final class Subprocess {
    private Subprocess() {}

    /**
     * Reads the process's output on another thread and waits at most {@code seconds} for it to
     * end; past that the process is killed and an {@link IOException} names {@code what}.
     * Reading the output to its end first, then waiting, would never time out: a process that
     * hangs keeps its output open.
     */
    public static String drainAndWait(Process p, long seconds, String what) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Thread reader = drain(p.getInputStream(), buf);
        try {
            if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                throw new IOException(what + ": no answer after " + seconds + " s; stopped");
            }
            reader.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException(what + ": interrupted");
        }
        synchronized (buf) {
            return buf.toString(StandardCharsets.UTF_8);
        }
    }

    /** Copies {@code in} into {@code out} on a daemon thread. */
    static Thread drain(InputStream in, ByteArrayOutputStream out) {
        Thread t = new Thread(() -> {
            byte[] b = new byte[8192];
            try (in) {
                int n;
                while ((n = in.read(b)) > 0) {
                    synchronized (out) {
                        out.write(b, 0, n);
                    }
                }
            } catch (IOException e) {
                // the process went away
            }
        }, "kiln-drain");
        t.setDaemon(true);
        t.start();
        return t;
    }
}
