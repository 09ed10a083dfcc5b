package dev.kiln.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;

/** Runs the kiln command in-process and captures its output. */
final class CliRunner {
    record Run(int exit, String out, String err) {}

    private CliRunner() {}

    static Run run(String... args) {
        CommandLine cl = Kiln.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Run(code, out.toString(), err.toString());
    }
}
