package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/** Completion scripts and man pages name every subcommand, option and choice kiln has. */
class CompletionAndManTest {
    @TempDir Path tmp;

    @Test
    void everySubcommandAndOptionIsInEveryScriptAndPage() throws Exception {
        var bash = CliRunner.run("completion", "bash");
        var zsh = CliRunner.run("completion", "zsh");
        var fish = CliRunner.run("completion", "fish");
        assertEquals(0, bash.exit() + zsh.exit() + fish.exit(), bash.err() + zsh.err() + fish.err());
        var man = CliRunner.run("man", "--to", tmp.toString());
        assertEquals(0, man.exit(), man.err());
        String index = Files.readString(tmp.resolve("kiln.1"));
        int checked = 0;
        for (Map.Entry<String, CommandLine> e : Kiln.commandLine().getSubcommands().entrySet()) {
            String name = e.getKey();
            var spec = e.getValue().getCommandSpec();
            if (spec.usageMessage().hidden() || name.equals("help")) {
                continue;
            }
            assertTrue(bash.out().contains(name), "bash completes " + name);
            assertTrue(fish.out().contains("-a '" + name + "'"), "fish completes " + name);
            assertTrue(index.contains(".B " + name.replace("-", "\\-")), "kiln(1) lists " + name);
            Path page = tmp.resolve("kiln-" + name + ".1");
            assertTrue(Files.exists(page), "a man page for " + name);
            String text = Files.readString(page);
            assertTrue(text.startsWith(".TH KILN-" + name.toUpperCase(java.util.Locale.ROOT) + " 1"), text);
            for (OptionSpec o : spec.options()) {
                if (o.hidden()) {
                    continue;
                }
                String longest = o.longestName();
                assertTrue(bash.out().contains(longest), "bash completes " + name + " " + longest);
                assertTrue(zsh.out().contains(longest), "zsh completes " + name + " " + longest);
                String fishName = longest.startsWith("--") ? "-l " + longest.substring(2) : "-s " + longest.substring(1);
                assertTrue(fish.out().contains("__fish_seen_subcommand_from " + name + "' ") && fish.out()
                        .lines().anyMatch(l -> l.contains("__fish_seen_subcommand_from " + name + "'")
                                && l.contains(fishName)), "fish completes " + name + " " + longest);
                assertTrue(text.contains(longest.replace("-", "\\-")), "kiln-" + name + "(1) documents " + longest);
                if (o.completionCandidates() != null && o.type().isEnum()) {
                    for (String c : o.completionCandidates()) {
                        assertTrue(bash.out().contains(c), "bash offers " + longest + " " + c);
                        assertTrue(text.contains(c), "the man page lists " + longest + " " + c);
                    }
                }
                checked++;
            }
        }
        assertTrue(checked > 80, "options checked: " + checked);
    }

    @Test
    void aCommandLineBuildsOnlyTheCommandItNamesYetCompletionSeesThemAll() {
        assertEquals("build", Kiln.subcommand(new String[] {"build", "--image", "scratch"}));
        assertEquals("", Kiln.subcommand(new String[] {"--version"}));
        assertEquals(null, Kiln.subcommand(new String[] {"--help"}));
        assertEquals(null, Kiln.subcommand(new String[] {"help", "build"}));
        assertEquals(null, Kiln.subcommand(new String[] {"nosuch"}));
        CommandLine only = Kiln.commandLine("completion");
        assertEquals(java.util.Set.of("completion"), only.getSubcommands().keySet());
        java.io.StringWriter out = new java.io.StringWriter();
        only.setOut(new java.io.PrintWriter(out, true));
        assertEquals(0, only.execute("completion", "fish"));
        for (String name : Kiln.commandLine().getSubcommands().keySet()) {
            if (!name.equals("man")) {
                assertTrue(out.toString().contains("-a '" + name + "'"), "completion lists " + name);
            }
        }
    }

    @Test
    void aSubcommandBuiltAloneHelpsVersionsAndFailsExactlyAsInTheFullCommand() {
        // The root is a bare spec when a subcommand is named first (no annotations read): its
        // usage, version and error text must not change for it.
        for (String name : Kiln.commandLine().getSubcommands().keySet()) {
            if (name.equals("help")) {
                continue; // "help" always gets the full command (Kiln.subcommand)
            }
            for (String[] args : new String[][] {{name, "--help"}, {name, "-V"}, {name, "--no-such-option"}}) {
                String[] full = runIn(Kiln.commandLine(), args);
                String[] alone = runIn(Kiln.commandLine(name), args);
                assertEquals(full[0], alone[0], String.join(" ", args) + ": exit code");
                assertEquals(full[1], alone[1], String.join(" ", args) + ": stdout");
                assertEquals(full[2], alone[2], String.join(" ", args) + ": stderr");
            }
        }
        String[] bad = runIn(Kiln.commandLine("build"), new String[] {"build", "--no-such-option"});
        assertTrue(bad[2].contains("try 'kiln build --help'"), bad[2]);
        assertTrue(runIn(Kiln.commandLine("build"), new String[] {"build", "--help"})[1].startsWith("Usage: kiln build "));
    }

    private static String[] runIn(CommandLine cl, String[] args) {
        java.io.StringWriter out = new java.io.StringWriter();
        java.io.StringWriter err = new java.io.StringWriter();
        cl.setOut(new java.io.PrintWriter(out, true));
        cl.setErr(new java.io.PrintWriter(err, true));
        int code = cl.execute(args);
        return new String[] {String.valueOf(code), out.toString(), err.toString()};
    }

    @Test
    void everyOptionAndParameterIsDescribed() {
        java.util.List<String> bare = new java.util.ArrayList<>();
        java.util.ArrayDeque<CommandLine> todo = new java.util.ArrayDeque<>(java.util.List.of(Kiln.commandLine()));
        while (!todo.isEmpty()) {
            CommandLine c = todo.poll();
            var spec = c.getCommandSpec();
            for (OptionSpec o : spec.options()) {
                if (!o.hidden() && String.join("", o.description()).isBlank()) {
                    bare.add(spec.qualifiedName() + " " + o.longestName());
                }
            }
            for (var p : spec.positionalParameters()) {
                if (!p.hidden() && String.join("", p.description()).isBlank()) {
                    bare.add(spec.qualifiedName() + " " + p.paramLabel());
                }
            }
            todo.addAll(c.getSubcommands().values());
        }
        assertEquals(java.util.List.of(), bare, "options and parameters without a description");
    }
}
