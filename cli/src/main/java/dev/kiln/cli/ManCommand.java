package dev.kiln.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

/**
 * {@code kiln man --to DIR}: writes man pages (troff, section 1) generated from the command
 * model: {@code kiln.1} and one {@code kiln-COMMAND.1} per subcommand. The release build runs it,
 * so the pages always list the options the shipped kiln has.
 */
@Command(name = "man", hidden = true, description = "Writes the man pages (section 1) into a directory.")
final class ManCommand implements Callable<Integer> {
    @CommandLine.Option(names = "--to", required = true, paramLabel = "DIR", description = "Directory to write into.")
    Path to;

    @CommandLine.Spec CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        Files.createDirectories(to);
        CommandSpec root = Kiln.commandLine().getCommandSpec(); // every subcommand
        String version = root.version().length > 0 ? root.version()[0] : "kiln";
        Files.writeString(to.resolve("kiln.1"), page(root, "kiln", version), StandardCharsets.UTF_8);
        for (Map.Entry<String, CommandLine> e : root.subcommands().entrySet()) {
            CommandSpec sub = e.getValue().getCommandSpec();
            if (sub.usageMessage().hidden() || e.getKey().equals("help")) {
                continue;
            }
            Files.writeString(to.resolve("kiln-" + e.getKey() + ".1"), page(sub, "kiln-" + e.getKey(), version),
                    StandardCharsets.UTF_8);
        }
        return 0;
    }

    static String page(CommandSpec c, String name, String version) {
        StringBuilder s = new StringBuilder();
        s.append(".TH ").append(name.toUpperCase(java.util.Locale.ROOT)).append(" 1 \"\" \"").append(esc(version))
                .append("\" \"kiln manual\"\n");
        s.append(".SH NAME\n").append(esc(name)).append(" \\- ")
                .append(esc(CompletionCommand.firstLine(c.usageMessage().description()))).append('\n');
        s.append(".SH SYNOPSIS\n.B ").append(esc(c.qualifiedName())).append('\n');
        for (PositionalParamSpec p : c.positionalParameters()) {
            s.append(".I ").append(esc(p.paramLabel())).append('\n');
        }
        s.append("[\\fIOPTIONS\\fR]\n");
        s.append(".SH DESCRIPTION\n");
        for (String line : c.usageMessage().description()) {
            s.append(text(line)).append("\n.PP\n");
        }
        if (!c.subcommands().isEmpty()) {
            s.append(".SH COMMANDS\n");
            for (Map.Entry<String, CommandLine> e : c.subcommands().entrySet()) {
                CommandSpec sub = e.getValue().getCommandSpec();
                if (sub.usageMessage().hidden()) {
                    continue;
                }
                s.append(".TP\n.B ").append(esc(e.getKey())).append('\n')
                        .append(text(CompletionCommand.firstLine(sub.usageMessage().description()))).append('\n');
            }
        }
        if (!c.positionalParameters().isEmpty()) {
            s.append(".SH ARGUMENTS\n");
            for (PositionalParamSpec p : c.positionalParameters()) {
                s.append(".TP\n.I ").append(esc(p.paramLabel())).append('\n')
                        .append(text(String.join(" ", p.description()))).append('\n');
            }
        }
        s.append(".SH OPTIONS\n");
        for (OptionSpec o : c.options()) {
            if (o.hidden()) {
                continue;
            }
            s.append(".TP\n\\fB").append(esc(String.join(", ", o.names()))).append("\\fR");
            if (o.arity().max() > 0) {
                s.append(" \\fI").append(esc(o.paramLabel())).append("\\fR");
            }
            s.append('\n').append(text(String.join(" ", o.description()))).append('\n');
        }
        if (c.usageMessage().exitCodeList() != null && !c.usageMessage().exitCodeList().isEmpty()) {
            s.append(".SH EXIT STATUS\n");
            for (Map.Entry<String, String> e : c.usageMessage().exitCodeList().entrySet()) {
                s.append(".TP\n.B ").append(esc(e.getKey().trim())).append('\n').append(text(e.getValue())).append('\n');
            }
        }
        if (c.parent() != null) {
            s.append(".SH SEE ALSO\n.BR kiln (1)\n");
        }
        return s.toString();
    }

    /** Running text: picocli's ${...} variables expanded as in --help, then escaped for troff. */
    private static String text(String s) {
        String t = s.replace("%n", " ").replaceAll("\\s+", " ").trim();
        return esc(t);
    }

    /** Escapes troff's special characters; a line never starts with a control character. */
    static String esc(String s) {
        String t = s.replace("\\", "\\e").replace("-", "\\-");
        if (t.startsWith(".") || t.startsWith("'")) {
            t = "\\&" + t;
        }
        return t.replace("\n.", "\n\\&.").replace("\n'", "\n\\&'");
    }
}
