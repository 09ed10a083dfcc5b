package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The progress line's escape codes reach only a terminal: with stdin and stdout on a pseudo
 * terminal (util-linux script) but stderr in a file, the log is plain; NO_COLOR and TERM=dumb
 * turn the escapes off on a terminal too.
 */
class TerminalIT {
    @TempDir Path tmp;

    private String run(String env, String redirect) throws Exception {
        Path jar = Path.of("target/kiln.jar").toAbsolutePath();
        Path src = Files.createDirectories(tmp.resolve("src/etc"));
        Files.writeString(src.resolve("hostname"), "nex\n");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cmd = env + " " + java + " -jar " + jar + " build --image dir:" + src.getParent() + " --size 16M -o "
                + tmp.resolve("t-" + System.nanoTime() + ".ext4") + " " + redirect;
        Path typescript = tmp.resolve("typescript");
        var r = ExternalTools.run(List.of("script", "-qec", cmd, typescript.toString()));
        assertEquals(0, r.exit(), r.out());
        return Files.readString(typescript);
    }

    @Test
    void escapesOnlyWhenStderrIsATerminal() throws Exception {
        String onTty = run("TERM=xterm", "");
        assertTrue(onTty.contains("\u001b[K"), "a terminal gets the progress line: " + onTty);

        Path log = tmp.resolve("build.log");
        run("TERM=xterm", "2>" + log);
        String logged = Files.readString(log);
        assertTrue(logged.contains("kiln: building"), logged);
        assertFalse(logged.contains("\u001b"), "stderr in a file gets no escape codes: " + logged);

        assertFalse(run("TERM=xterm NO_COLOR=1", "").contains("\u001b["), "NO_COLOR: no escapes");
        assertFalse(run("TERM=dumb", "").contains("\u001b["), "TERM=dumb: no escapes");
    }
}
