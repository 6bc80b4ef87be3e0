using System.Diagnostics;

namespace ActorSim.Host.Tests;

/// <summary>The built <c>actorsim</c> run as a process: exit codes and what it prints.</summary>
public class ActorsimProcessTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    /// <summary>`actorsim bench --quick --reps 1 … --json`, which must exit 0: its output and its last
    /// line's JSON object.</summary>
    private static (System.Text.Json.JsonDocument Json, string Output) Bench(params string[] args)
    {
        var (exit, output, err) = Run(["bench", "--quick", "--reps", "1", .. args, "--json"]);
        Assert.True(exit == 0, output + err);
        return (System.Text.Json.JsonDocument.Parse(output.Trim().Split('\n')[^1]), output);
    }

    private static void NeedsDatabase() =>
        Assert.False(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ACTORSIM_DB")), "ACTORSIM_DB is not set: run through scripts/test.sh");

    [Fact]
    public void Deterministic_mode_reaches_a_scenario_given_to_run_and_a_run_on_the_clock_is_told_it_will_not_repeat()
    {
        var scenario = Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml");
        var (exit, output, err) = Run("run", "--scenario", scenario, "--deterministic", "--in-memory");
        Assert.True(exit == 0, output + err);
        Assert.Contains("(in-memory journal, deterministic)", output);
        (exit, _, err) = Run("run", "--scenario", scenario, "--kernel", "6.8", "--in-memory");
        Assert.Equal(2, exit);
        Assert.Contains("--kernel does not apply to --scenario", err);
        (exit, output, err) = Run("run", "--deterministic", "--in-memory", "--duration", "1s");
        Assert.True(exit == 0, output + err);
        Assert.Contains("--deterministic without --rounds stops on the clock", err);
        (exit, output, err) = Run("run", "--deterministic", "--in-memory", "--rounds", "5");
        Assert.True(exit == 0, output + err);
        Assert.DoesNotContain("stops on the clock", err);
        Assert.Contains("seed 1, 5 rounds, journal in memory", output); // not the clock's 30 s, which does not apply
        (exit, _, err) = Run("run", "--in-memory", "--rounds", "5", "--duration", "10s");
        Assert.Equal(2, exit);
        Assert.Contains("give --duration or --rounds, not both", err);
    }

    [Fact]
    public void Kernels_lists_the_rule_sets_and_the_flag_each_sets()
    {
        var (exit, output, _) = Run("kernels");
        Assert.Equal(0, exit);
        Assert.Contains("6.8   VFIO BAR mmap adds: (no VM_ALLOW_ANY_UNCACHED)", output);
        Assert.Contains("6.9   VFIO BAR mmap adds: VM_ALLOW_ANY_UNCACHED", output);
        // Each kind of page and what each kernel decides for it, the model run (KernelComparison).
        Assert.Contains("FWB on, DIC on", output);
        Assert.Matches(@"\nvfio-pci BAR +read +Mapped Device-nGnRE +Mapped Normal-NC +Mapped Normal-NC\n", output);
        Assert.Matches(@"\nnvgrace-gpu usemem \(cacheable PFNMAP\) +read +Mapped Device-nGnRE +Mapped Device-nGnRE +Mapped Normal-WB\n", output);

        (exit, output, _) = Run("kernels", "--no-fwb");
        Assert.Equal(0, exit);
        Assert.Contains("FWB off, DIC on", output);
        Assert.Matches(@"\nnvgrace-gpu usemem \(cacheable PFNMAP\) +read +Mapped Device-nGnRE +Mapped Device-nGnRE +KVM_SET_USER_MEMORY_REGION EINVAL\n", output);
    }

    [Theory]
    [InlineData("kernels: unknown option '--kernel'", "kernels", "--kernel", "6.9")]
    [InlineData("kernels: unexpected '6.9'", "kernels", "6.9")]
    [InlineData("kernels: --no-fwb given twice", "kernels", "--no-fwb", "--no-fwb")]
    public void Kernels_refuses_what_it_does_not_take(string message, params string[] args)
    {
        var (exit, output, err) = Run(args);
        Assert.True(exit == 2, $"{exit} {output} {err}");
        Assert.Contains($"actorsim {message}", err);
        Assert.Equal("", output);
    }

    [Fact]
    public void Bench_prints_a_json_line_with_every_key_the_issue_names_and_null_for_sections_not_run()
    {
        var (j, output) = Bench("--vms", "1", "--vcpus", "2", "--only", "memory");
        using var doc = j;
        Assert.StartsWith("actorsim bench — ", output);
        Assert.Matches(@"^actorsim bench — [^\n]*, build [0-9a-f]{7}( with uncommitted changes)?\n", output); // the commit its figures are of
        string[] keys = ["inmem_faults_per_s", "durable_decisions_per_s", "batched_over_unbatched", "journal_over_akka_sql",
            "durable_over_copy_ceiling", "replay_file_decisions_per_s", "replay_db_decisions_per_s", "p99_fault_latency_us", "bytes_per_mapped_page"];
        Assert.All(keys, k => Assert.True(j.RootElement.TryGetProperty(k, out _), $"no {k}"));
        Assert.True(j.RootElement.GetProperty("bytes_per_mapped_page").GetDouble() > 0);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, j.RootElement.GetProperty("inmem_faults_per_s").ValueKind); // --only memory
    }

    [Fact]
    public void Bench_in_memory_measures_faults_the_bytes_allocated_per_fault_and_the_time_paused_for_gc()
    {
        var (j, output) = Bench("--vms", "1", "--vcpus", "2", "--only", "inmem");
        using var doc = j;
        var faults = j.RootElement.GetProperty("inmem_faults_per_s").GetDouble();
        var allocated = j.RootElement.GetProperty("inmem_allocated_bytes_per_fault").GetDouble();
        Assert.True(faults > 0, output);
        // A fault allocates at least its messages and decision record, and far less than a megabyte.
        Assert.InRange(allocated, 100, 1 << 20);
        // The share of the window spent paused for GC: a fraction, and some collection ran in it.
        Assert.InRange(j.RootElement.GetProperty("inmem_gc_paused_fraction").GetDouble(), 1e-6, 1);
        Assert.True(j.RootElement.GetProperty("p99_fault_latency_us").GetDouble() > 0, output);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, j.RootElement.GetProperty("durable_decisions_per_s").ValueKind);
    }

    [Fact]
    public void Bench_measures_the_journal_alone_ours_and_the_peer_side_by_side()
    {
        NeedsDatabase();
        var (j, output) = Bench("--only", "journal");
        using var doc = j;
        double Get(string k) => j.RootElement.GetProperty(k).GetDouble();
        foreach (var w in new[] { "persistall", "persist_many" })
        {
            Assert.True(Get($"{w}_journal_events_per_s") > 0 && Get($"{w}_akka_sql_events_per_s") > 0, output);
            Assert.Equal(Get($"{w}_journal_events_per_s") / Get($"{w}_akka_sql_events_per_s"), Get($"{w}_journal_over_akka_sql"), 6);
        }
        // Cores used in the window by the bench and by the local PostgreSQL (the tests' cluster): both
        // worked, and neither used more cores than the machine has (a little slack for the clocks).
        foreach (var k in new[] { "persistall_journal_host_cpu_cores", "persistall_journal_postgres_cpu_cores", "persistall_akka_sql_postgres_cpu_cores" })
            Assert.InRange(Get(k), 0.01, Environment.ProcessorCount * 1.1);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, j.RootElement.GetProperty("durable_decisions_per_s").ValueKind);
    }

    /// <summary>The replay section replays the same decisions from a file, from memory, and from the
    /// database twice: a run written as an import and one written as the journal records a run.</summary>
    [Fact]
    public void Bench_replays_from_a_file_and_from_the_database_as_imported_and_as_recorded()
    {
        NeedsDatabase();
        var (j, output) = Bench("--only", "replay");
        using var doc = j;
        foreach (var k in new[] { "replay_file_decisions_per_s", "replay_memory_decisions_per_s", "replay_db_decisions_per_s", "replay_db_recorded_decisions_per_s" })
            Assert.True(j.RootElement.GetProperty(k).GetDouble() > 0, $"{k}: {output}");
        Assert.Equal(System.Text.Json.JsonValueKind.Null, j.RootElement.GetProperty("durable_decisions_per_s").ValueKind);
    }

    [Fact]
    public void Run_in_memory_for_a_second_prints_its_id_and_a_summary()
    {
        var (exit, output, err) = Run("run", "--in-memory", "--duration", "1s", "--kernel", "6.17", "--no-fwb", "--vms", "1", "--vcpus", "2");
        Assert.True(exit == 0, output + err);
        Assert.StartsWith("run: run-", output);
        Assert.Contains("kernel 6.17 fwb=0 dic=1", output);
        Assert.Contains("invariants: hold", output);
    }

    [Fact]
    public void A_run_of_no_rounds_says_it_had_no_outcomes()
    {
        var (exit, output, err) = Run("run", "--in-memory", "--rounds", "0");
        Assert.True(exit == 0, output + err);
        Assert.Contains("  0 guest accesses in ", output);
        Assert.Contains("\n  outcomes: none\n", output.ReplaceLineEndings("\n"));
    }

    /// <summary>An empty path, a directory or a missing file where a file is named: exit 2 saying so, each
    /// command in the same words (several ended unhandled, exit 134, from Path.GetFullPath, new FileInfo
    /// or opening a directory; a scenario's said "FILE:0: file: …").</summary>
    [Theory]
    [InlineData("actorsim run: --export '': an empty path, not a file", "run", "--in-memory", "--rounds", "1", "--export", "")]
    [InlineData("actorsim run: --metrics '': an empty path, not a file", "run", "--in-memory", "--rounds", "1", "--metrics", "")]
    [InlineData("actorsim export: -o '': an empty path, not a file", "export", "--run", "any", "-o", "")]
    [InlineData("actorsim scenario: --junit '': an empty path, not a file", "scenario", "--in-memory", "--junit", "", "scenarios/o05-ram-is-normal.yaml")]
    [InlineData("actorsim scenario: --junit /tmp: a directory, not a file", "scenario", "--in-memory", "--junit", "/tmp", "scenarios/o05-ram-is-normal.yaml")]
    [InlineData("actorsim scenario: '': an empty path, not a file", "scenario", "--in-memory", "")]
    [InlineData("actorsim scenario: /tmp: a directory, not a file", "scenario", "--in-memory", "/tmp")]
    [InlineData("actorsim scenario: scenarios/no-such.yaml: no such file", "scenario", "--in-memory", "scenarios/no-such.yaml")]
    [InlineData("actorsim replay: scenarios/no-such.jsonl: no such file", "replay", "--file", "scenarios/no-such.jsonl")]
    [InlineData("actorsim replay: '': an empty path, not a file", "replay", "--file", "")]
    [InlineData("actorsim import: '': an empty path, not a file", "import", "")]
    [InlineData("actorsim explain: '': an empty path, not a file", "explain", "--file", "", "--vm", "vm1", "--gpa", "0x1000")]
    [InlineData("actorsim explain: /tmp: a directory, not a file", "explain", "--file", "/tmp", "--vm", "vm1", "--gpa", "0x1000")]
    public void An_empty_path_or_a_directory_for_a_file_exits_2_saying_so(string message, params string[] args)
    {
        var (exit, output, err) = Cli.RunIn(null, Cli.Repo, args);
        Assert.Equal((2, "", message), (exit, output, err.Trim()));
    }

    /// <summary>A file to write in a directory that does not exist: exit 2 before any work (a run would
    /// otherwise end with nowhere to put its export).</summary>
    [Fact]
    public void An_output_file_that_cannot_be_written_is_refused_before_the_work()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-dir-{Guid.NewGuid():N}", "x.jsonl");
        var (exit, output, err) = Run("run", "--in-memory", "--rounds", "3", "--export", missing);
        Assert.True(exit == 2, $"{exit} {output} {err}");
        Assert.Contains($"actorsim run: --export {missing}: no such directory", err);
        Assert.DoesNotContain("run: ", output); // refused before it started
        (exit, _, err) = Run("run", "--in-memory", "--rounds", "3", "--export", Path.GetTempPath());
        Assert.Equal(2, exit);
        Assert.Contains("a directory, not a file", err);
        (exit, _, err) = Run("export", "--run", "any", "-o", missing);
        Assert.Equal(2, exit);
        Assert.Contains($"actorsim export: -o {missing}: no such directory", err);
    }

    /// <summary>An output that is another file of the command is refused, before anything is written:
    /// `scenario --junit S.yaml S.yaml` replaced the scenario with its report (the report is created
    /// first), here also through a symbolic link; `run --export F --metrics F` wrote both into one file.</summary>
    [Fact]
    public void An_output_that_is_one_of_the_commands_other_files_exits_2_and_leaves_it_as_it_was()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"samefile-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var scenario = Path.Combine(dir, "s.yaml");
        File.Copy(Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml"), scenario);
        var link = Path.Combine(dir, "link.yaml");
        File.CreateSymbolicLink(link, scenario);
        foreach (var (args, message) in new[]
        {
            (new[] { "scenario", "--in-memory", "--junit", scenario, scenario }, $"actorsim scenario: --junit {scenario} is the same file as the scenario file {scenario}: one file cannot be both"),
            (["scenario", "--in-memory", "--junit", link, scenario], $"actorsim scenario: --junit {link} is the same file as the scenario file {scenario}: one file cannot be both"),
            (["run", "--in-memory", "--scenario", scenario, "--junit", link], $"actorsim scenario: --junit {link} is the same file as the scenario file {scenario}: one file cannot be both"),
            (["run", "--in-memory", "--rounds", "2", "--export", Path.Combine(dir, "out"), "--metrics", Path.Combine(dir, ".", "out")],
                $"actorsim run: --metrics {Path.Combine(dir, ".", "out")} is the same file as --export {Path.Combine(dir, "out")}: one file cannot be both"),
        })
        {
            var (exit, output, err) = Run(args);
            Assert.Equal((2, "", message), (exit, output, err.Trim()));
        }
        Assert.Equal(File.ReadAllText(Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml")), File.ReadAllText(scenario));
        Assert.Equal([link, scenario], Directory.GetFiles(dir).Order());
        // Two names of a device are not refused: /dev/null takes both.
        Assert.Equal(0, Run("run", "--in-memory", "--rounds", "2", "--export", "/dev/null", "--metrics", "/dev/null").Exit);
        Directory.Delete(dir, true);
    }

    [Theory]
    [InlineData("bogus")]
    [InlineData("run", "--kernel", "5.10")]
    [InlineData("run", "--frobnicate")]
    [InlineData("run", "--duration", "soon")]
    [InlineData("run", "--in-memory", "--duration", "1e30h")] // past TimeSpan: was an OverflowException
    [InlineData("delete", "--older-than", "1e300d")]
    [InlineData("delete")]
    [InlineData("replay")]
    [InlineData("replay", "--run", "x", "--file", "y")]
    [InlineData("export", "--run", "x")]
    [InlineData("explain", "--vm", "vm1")]
    [InlineData("bench", "--only", "everything")]
    [InlineData("bench", "--reps", "0")]
    [InlineData("bench", "--vms", "0")]
    [InlineData("run", "--in-memory", "--rounds", "-5")]
    [InlineData("run", "--in-memory", "--vms", "4294967297")] // 2^32 + 1: was taken as 1 VM
    [InlineData("run", "--in-memory", "--seed", "4294967296")]
    [InlineData("run", "--in-memory", "--snapshot-every", "-1")]
    [InlineData("run", "--in-memory", "--run-id", "")]
    [InlineData("run", "--in-memory", "--run-id", "a\tb")]
    [InlineData("replay", "--file", "/dev/null")]
    public void Bad_usage_exits_2_with_a_message_on_stderr(params string[] args)
    {
        var (exit, _, err) = Run(args);
        Assert.Equal(2, exit);
        Assert.StartsWith("actorsim", err);
    }

    /// <summary>Options that contradict each other or repeat are refused, not resolved by a silent choice.</summary>
    [Theory]
    [InlineData("run: --rounds given twice", "run", "--in-memory", "--rounds", "2", "--rounds", "3")]
    [InlineData("runs: --json given twice", "runs", "--json", "--json")]
    [InlineData("run: give --db or --in-memory, not both", "run", "--in-memory", "--db", "Host=x", "--rounds", "1")]
    [InlineData("scenario: give --db or --in-memory, not both", "scenario", "--in-memory", "--db", "Host=x", "scenarios/o01-vfio-bar-normal-nc.yaml")]
    public void Repeated_or_contradicting_options_exit_2_naming_them(string message, params string[] args)
    {
        var (exit, output, err) = Run(args);
        Assert.True(exit == 2, $"{exit} {output} {err}");
        Assert.Contains($"actorsim {message}", err);
    }

    [Fact]
    public void Help_lists_the_commands()
    {
        var (exit, output, _) = Run("--help");
        Assert.Equal(0, exit);
        Assert.Contains("run", output);
        Assert.Contains("kernels", output);
    }

    [Fact]
    public void Dash_dash_version_is_the_version_command()
    {
        var (exit, output, err) = Run("--version");
        Assert.True(exit == 0, err);
        Assert.Equal(Run("version").Out, output);
        Assert.StartsWith("actorsim ", output);
    }

    /// <summary>`version` names the commit actorsim was built from, one the repository has; so does a copy
    /// of the build outside the checkout (BuildInfo.Commit: it was `git rev-parse HEAD` run beside
    /// actorsim.dll, the checkout's commit when it ran, none outside one); and whether the build had changes
    /// that commit has not (BuildInfo.Modified).</summary>
    [Fact]
    public void Version_names_the_commit_the_build_came_from_also_for_a_copy_outside_the_checkout()
    {
        var (exit, output, err) = Run("version");
        Assert.True(exit == 0, err);
        var version = System.Text.RegularExpressions.Regex.Match(output, @"^actorsim [0-9.]+ \(commit ([0-9a-f]{40})( with uncommitted changes)?\)\n");
        var commit = version.Groups[1].Value;
        Assert.True(commit.Length == 40, output);
        // Said when the checkout's tracked files differ from the commit (as built: scripts/test.sh builds first).
        using (var status = Process.Start(new ProcessStartInfo("git", ["status", "--porcelain", "--untracked-files=no"]) { WorkingDirectory = Cli.Repo, RedirectStandardOutput = true })!)
        {
            var changed = status.StandardOutput.ReadToEnd();
            status.WaitForExit();
            Assert.True(version.Groups[2].Success == (changed.Length > 0), $"{output}git status: {changed} (built before the checkout changed? rebuild)");
        }
        using (var git = Process.Start(new ProcessStartInfo("git", ["cat-file", "-e", $"{commit}^{{commit}}"]) { WorkingDirectory = Cli.Repo })!)
        {
            git.WaitForExit();
            Assert.True(git.ExitCode == 0, $"{commit} is not a commit of {Cli.Repo}");
        }

        var copy = Path.Combine(Path.GetTempPath(), $"actorsim-copy-{Guid.NewGuid():N}");
        try
        {
            var bin = Path.GetDirectoryName(Cli.Dll)!;
            foreach (var f in Directory.EnumerateFiles(bin, "*", SearchOption.AllDirectories))
            {
                var to = Path.Combine(copy, Path.GetRelativePath(bin, f));
                Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                File.Copy(f, to);
            }
            var psi = new ProcessStartInfo("dotnet", [Path.Combine(copy, "actorsim.dll"), "version"]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = copy };
            using var p = Process.Start(psi)!;
            var copied = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
            Assert.StartsWith(version.Value, copied);
        }
        finally
        {
            Directory.Delete(copy, true);
        }

        (exit, output, err) = Run("version", "--json");
        Assert.Equal((2, ""), (exit, output));
        Assert.Contains("actorsim version: unexpected '--json'", err);
    }
}

/// <summary><c>actorsim scenario</c> as a process: exit 0 / 1 / 2 and what it prints.</summary>
public class ScenarioCommandTests
{
    private static string Write(string name, string text)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"actorsim-tests-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static (int Exit, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    private const string Good = """
        name: good
        kernel: "6.9"
        devices:
          - name: gpu0
            driver: vfio-pci
            bars: [ { index: 0, size: 16MiB } ]
        vms:
          - name: vm1
        steps:
          - mmap: { name: bar0, device: gpu0, region: 0, size: 16MiB }
          - memslot: { vm: vm1, slot: 1, gpa: 0x8000000000, size: 16MiB, backing: bar0 }
          - access: { vm: vm1, gpa: 0x8000001000, op: read }
          - expect: { vm: vm1, gpa: 0x8000001000, s2: Normal-NC }
          - expect: { invariants: hold }
        """;

    /// <summary>A scenario's name and file name with control characters (an escape sequence that clears
    /// the screen, a newline) are shown with them escaped by scenario, and the file by runs and summary
    /// (which name a scenario's run by its file): they were printed as written. The run id has '-' in their place.</summary>
    [Fact]
    public void A_scenario_name_s_control_characters_are_printed_as_escapes()
    {
        var text = Good.Replace("name: good", "name: \"clear\\e[2Jand\\nnewline\"").Replace("vm1", "\"v\\em1\"");
        var file = Write("ctl\u001b[2J.yaml", text);
        var (exit, output, err) = Run("scenario", file);
        Assert.True(exit == 0, output + err);
        var shownFile = file.Replace("\u001b", "\\u001b");
        Assert.Contains($"scenario clear\\u001b[2Jand\\u000anewline ({shownFile}, kernel 6.9 ", output);
        Assert.Contains("pass step 4 (line 13): v\\u001bm1 gpa 0x8000001000: s2 Normal-NC", output); // a step's line
        var (badExit, badOutput, badErr) = Run("scenario", "--in-memory", Write("bad-ctl.yaml", text.Replace("access: { vm: \"v\\em1\"", "access: { vm: \"v\\em2\"")));
        Assert.Equal((2, ""), (badExit, badOutput));
        Assert.Contains("access.vm: unknown name 'v\\u001bm2'", badErr); // an error quoting the file
        Assert.DoesNotContain('\u001b', badErr);
        var run = System.Text.RegularExpressions.Regex.Match(output, @"(?m)^run: (\S+) ").Groups[1].Value;
        Assert.StartsWith("clear-[2Jand-newline-", run);
        var runs = Run("runs").Out;
        var summary = Run("summary", "--run", run).Out;
        Assert.Matches($@"(?m)^{System.Text.RegularExpressions.Regex.Escape(run)} .* {System.Text.RegularExpressions.Regex.Escape(shownFile)}$", runs.ReplaceLineEndings("\n"));
        Assert.Contains($", scenario {shownFile}", summary);
        Assert.DoesNotContain('\u001b', output + runs + summary);
        Assert.Equal(0, Run("delete", run).Exit);
    }

    [Fact]
    public void A_passing_scenario_prints_a_line_per_expectation_and_exits_0()
    {
        var (exit, output, _) = Run("scenario", Write("good.yaml", Good));
        Assert.Equal(0, exit);
        Assert.Contains("pass step 4 (line 13): vm1 gpa 0x8000001000: s2 Normal-NC", output);
        Assert.Contains("pass step 5 (line 14): invariants hold", output);
    }

    [Fact]
    public void A_failing_expectation_exits_1_and_names_its_step()
    {
        var (exit, output, _) = Run("scenario", Write("fails.yaml", Good.Replace("kernel: \"6.9\"", "kernel: \"6.8\"")));
        Assert.Equal(1, exit);
        Assert.Contains("FAIL step 4 (line 13)", output);
        Assert.Contains("got s2 Device-nGnRE", output);
    }

    [Theory]
    [InlineData("colour", "  - mmap: { name: bar0, device: gpu0, region: 0, size: 16MiB, colour: red }", "10: mmap.colour")]
    [InlineData("name", "  - mmap: { name: bar0, device: gpu9, region: 0, size: 16MiB }", "10: mmap.device: unknown name 'gpu9'")]
    [InlineData("number", "  - mmap: { name: bar0, device: gpu0, region: 0, size: 16 megs }", "10: mmap.size")]
    public void An_invalid_file_exits_2_naming_file_line_and_field(string tag, string badStep, string where)
    {
        var text = Good.Replace("  - mmap: { name: bar0, device: gpu0, region: 0, size: 16MiB }", badStep);
        var path = Write($"bad-{tag}.yaml", text);
        var (exit, output, err) = Run("scenario", Write("good.yaml", Good), path);
        Assert.Equal(2, exit);
        Assert.Contains($"{path}:{where}", err);
        Assert.DoesNotContain("pass", output); // an invalid file runs nothing
    }

    [Fact]
    public void A_missing_file_exits_2() => Assert.Equal(2, Run("scenario", "/nonexistent/x.yaml").Exit);

    private static string ReportPath(string name)
    {
        var path = Path.Combine(Path.GetTempPath(), $"actorsim-tests-{Environment.ProcessId}", name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Delete(path);
        return path;
    }

    [Fact]
    public void Junit_reports_a_suite_per_scenario_a_case_per_expectation_and_a_failure_per_failed_one()
    {
        var good = Write("good.yaml", Good);
        // A control character in a file name, which XML 1.0 cannot hold: replaced, not a broken report.
        var fails = Write("fails\u0001.yaml", Good.Replace("name: good", "name: fails").Replace("kernel: \"6.9\"", "kernel: \"6.8\""));
        var report = ReportPath("report.xml");
        var (exit, output, err) = Run("scenario", "--junit", report, good, fails);
        Assert.True(exit == 1, output + err); // the report changes nothing of the exit code
        var root = System.Xml.Linq.XDocument.Load(report).Root!;
        Assert.Equal("testsuites", root.Name.LocalName);
        Assert.Equal(("4", "1", "0"), ((string)root.Attribute("tests")!, (string)root.Attribute("failures")!, (string)root.Attribute("errors")!));
        var suites = root.Elements("testsuite").ToArray();
        Assert.Equal(["good", "fails"], suites.Select(x => (string)x.Attribute("name")!));
        Assert.Equal(fails.Replace('\u0001', '\uFFFD'), (string)suites[1].Attribute("file")!);
        // Each suite names the run it wrote, as the console does.
        var runs = output.Split('\n').Where(l => l.StartsWith("run: ", StringComparison.Ordinal)).Select(l => l[5..l.IndexOf(' ', 5)]).ToArray();
        Assert.Equal(runs, suites.Select(x => (string)x.Element("properties")!.Elements("property").Single(p => (string)p.Attribute("name")! == "run").Attribute("value")!));
        var cases = suites[1].Elements("testcase").ToArray();
        Assert.Equal(["step 4 (line 13): vm1 gpa 0x8000001000: s2 Normal-NC", "step 5 (line 14): invariants hold"],
            cases.Select(c => (string)c.Attribute("name")!));
        var failure = Assert.Single(cases[0].Elements("failure"));
        Assert.Contains("got s2 Device-nGnRE", (string)failure.Attribute("message")!);
        Assert.Equal("13", (string)cases[0].Attribute("line")!);
        Assert.Empty(cases[1].Elements());
        Assert.Empty(suites[0].Elements("testcase").SelectMany(c => c.Elements())); // the good one passed
        Assert.Equal(cases.Select(c => (string)c.Attribute("name")!), suites[0].Elements("testcase").Select(c => (string)c.Attribute("name")!)); // same steps
    }

    [Fact]
    public void Junit_reports_an_invalid_file_as_an_error_and_nothing_else()
    {
        var bad = Write("bad-junit.yaml", Good.Replace("  - mmap: { name: bar0, device: gpu0, region: 0, size: 16MiB }", "  - mmap: { name: bar0, device: gpu0, region: 0, size: 16MiB, colour: red }"));
        var report = ReportPath("invalid.xml");
        var (exit, _, err) = Run("scenario", "--junit", report, Write("good.yaml", Good), bad);
        Assert.Equal(2, exit);
        var root = System.Xml.Linq.XDocument.Load(report).Root!;
        Assert.Equal(("1", "0", "1"), ((string)root.Attribute("tests")!, (string)root.Attribute("failures")!, (string)root.Attribute("errors")!));
        var error = Assert.Single(root.Descendants("error"));
        Assert.StartsWith($"{bad}:10: mmap.colour", (string)error.Attribute("message")!);
        Assert.Contains($"{bad}:10: mmap.colour", err);
    }

    [Fact]
    public void Run_with_a_scenario_passes_junit_on_and_a_seeded_run_refuses_it()
    {
        var report = ReportPath("via-run.xml");
        var (exit, output, err) = Run("run", "--scenario", Write("good.yaml", Good), "--in-memory", "--junit", report);
        Assert.True(exit == 0, output + err);
        Assert.Equal("good", (string)System.Xml.Linq.XDocument.Load(report).Root!.Element("testsuite")!.Attribute("name")!);
        (exit, output, err) = Run("run", "--in-memory", "--duration", "1s", "--junit", ReportPath("seeded.xml"));
        Assert.Equal(2, exit);
        Assert.Contains("--junit applies to --scenario", err);
        Assert.DoesNotContain("run: ", output); // refused before the run started
    }

    [Fact]
    public void Junit_to_a_path_that_cannot_be_written_exits_2_before_anything_runs()
    {
        var (exit, output, err) = Run("scenario", "--junit", "/nonexistent/dir/report.xml", Write("good.yaml", Good));
        Assert.Equal(2, exit);
        Assert.Contains("--junit /nonexistent/dir/report.xml: no such directory /nonexistent/dir", err);
        Assert.DoesNotContain("scenario good", output);
    }

    [Fact]
    public void The_shipped_scenarios_all_pass_through_the_cli()
    {
        var files = Directory.GetFiles(Path.Combine(Cli.Repo, "scenarios"), "*.yaml").Order().ToArray();
        var (exit, output, err) = Run(["scenario", .. files]);
        Assert.True(exit == 0, output + err);
        Assert.Contains($"{files.Length} scenarios passed, 0 failed", output);
    }
}

public class DatabaseErrorTests
{
    [Fact]
    public async Task An_unreachable_database_exits_3_naming_the_address_and_never_the_password()
    {
        using var p = Cli.Start(null, "scenario", "--db", "Host=127.0.0.1;Port=1;Username=u;Password=TopSecret123;Database=x",
            Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml"));
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(3, p.ExitCode);
        var err = await stderr;
        Assert.Contains("database 127.0.0.1:1/x (--db) unreachable after 3 attempts (NpgsqlException: Failed to connect to 127.0.0.1:1: Connection refused)", err);
        Assert.DoesNotContain("TopSecret123", err + await stdout);
    }

    /// <summary>A server that answers and refuses (a wrong password, no such database): said as PostgreSQL
    /// says it, exit 3, never the password. It was "unreachable after 3 attempts (PostgresException)".</summary>
    [Fact]
    public void A_database_that_refuses_the_connection_exits_3_saying_why_and_never_the_password()
    {
        var db = new Npgsql.NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable("ACTORSIM_DB") ?? throw new InvalidOperationException("ACTORSIM_DB is not set: run through scripts/test.sh"));
        var where = $"database {db.Host}:{db.Port}";
        foreach (var (change, says) in new (Action<Npgsql.NpgsqlConnectionStringBuilder>, string)[]
        {
            (b => b.Password = "TopSecret123", $"/{db.Database} (--db) refused the connection: 28P01: password authentication failed for user \"{db.Username}\""),
            (b => b.Database = "no_such_database", "/no_such_database (--db) refused the connection: 3D000: database \"no_such_database\" does not exist"),
        })
        {
            var b = new Npgsql.NpgsqlConnectionStringBuilder(db.ConnectionString);
            change(b);
            foreach (var args in new[] { new[] { "runs" }, ["run", "--rounds", "1"] })
            {
                var (exit, output, err) = Cli.Run([.. args, "--db", b.ConnectionString]);
                Assert.True(exit == 3, $"{exit} {output} {err}");
                Assert.Equal($"actorsim: {where}{says}\n", err);
                Assert.DoesNotContain("TopSecret123", err + output);
            }
        }
    }

    /// <summary>A role its schema's owner granted SELECT (scripts/pg.sh makes one, <c>actorsim_reader</c>):
    /// it reads runs; what it may not write exits 3 naming the refusal and loses nothing. Before, every
    /// command, <c>runs</c> included, exited 3 on "must be owner of table mt_doc_deadletterevent": the
    /// catalog hid the primary keys of tables it does not own, and the schema check altered them.</summary>
    [Fact]
    public void A_role_that_may_only_read_the_schema_reads_runs_and_a_write_exits_3_saying_why()
    {
        var db = Environment.GetEnvironmentVariable("ACTORSIM_DB") is { Length: > 0 } s ? s : throw new InvalidOperationException("ACTORSIM_DB is not set: run through scripts/test.sh");
        var id = $"ro-{Guid.NewGuid():N}"[..15];
        Assert.Equal(0, Cli.Run("run", "--rounds", "3", "--vms", "1", "--vcpus", "2", "--run-id", id).Exit);
        using (var conn = new Npgsql.NpgsqlConnection(db))
        {
            conn.Open();
            using var grant = new Npgsql.NpgsqlCommand(
                "grant usage on schema actorsim to actorsim_reader; grant select on all tables in schema actorsim to actorsim_reader", conn);
            grant.ExecuteNonQuery();
        }
        var reader = new Npgsql.NpgsqlConnectionStringBuilder(db) { Username = "actorsim_reader", Password = "actorsim_reader" }.ConnectionString;
        var log = Path.Combine(Path.GetTempPath(), $"{id}.jsonl");
        try
        {
            foreach (var args in new[]
            {
                ["runs"], ["summary", "--run", id], ["replay", "--run", id, "--verify"], ["export", "--run", id, "-o", log],
                new[] { "explain", "--run", id, "--vm", "vm1", "--gpa", "0x40000000" },
            })
            {
                var (exit, output, err) = Cli.Run([.. args, "--db", reader]);
                Assert.True(exit == 0, $"{string.Join(' ', args)}: {exit} {output} {err}");
                if (args[0] == "runs") Assert.Contains(id, output);
            }
            Assert.Equal(0, Cli.Run("replay", "--file", log, "--verify").Exit);
            foreach (var args in new[] { ["run", "--rounds", "1"], ["import", log, "--as", id + "-copy"], new[] { "delete", id } })
            {
                var (exit, output, err) = Cli.Run([.. args, "--db", reader]);
                Assert.True(exit == 3, $"{string.Join(' ', args)}: {exit} {output} {err}");
                Assert.Contains("PostgresException: 42501: permission denied for table", err);
                Assert.DoesNotContain("Password=", err + output);
            }
            Assert.Equal(0, Cli.Run("summary", "--run", id).Exit); // the refused delete took nothing
            Assert.Equal(2, Cli.Run("summary", "--run", id + "-copy").Exit);
        }
        finally { File.Delete(log); }
    }

    /// <summary>The database lost in the middle of a scenario, past the outage limit: exit 3 at the limit,
    /// saying so, as `run` does — before, the steps waited for their asks' 30 s and the process ended on
    /// an unhandled AskTimeoutException (exit 134).</summary>
    [Fact]
    public async Task A_scenario_whose_database_goes_away_past_the_outage_limit_exits_3_at_the_limit()
    {
        // Thousands of RAM pages faulted one step at a time, each decision a journal write: seconds on the database.
        var steps = string.Join("\n", Enumerable.Range(1, 6000).Select(i => $"  - access: {{ vm: vm1, gpa: 0x{0x40000000 + i * 4096L:x}, op: write }}"));
        var file = Path.Combine(Path.GetTempPath(), $"actorsim-tests-{Environment.ProcessId}", "long-ram.yaml");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, """
            name: long-ram
            kernel: "6.9"
            vms:
              - name: vm1
                ram: { gpa: 0x40000000, size: 1GiB }
            steps:
              - access: { vm: vm1, gpa: 0x40000000, op: read }
              - expect: { access: last, result: mapped }

            """ + steps + "\n  - expect: { invariants: hold }\n");
        var real = new Npgsql.NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable("ACTORSIM_DB"));
        using var proxy = new ActorSim.Tests.CuttableProxy(real.Port);
        real.Port = proxy.Port;
        using var p = Cli.Start(new Dictionary<string, string?> { ["ACTORSIM_OUTAGE_LIMIT"] = "2s" }, "scenario", "--db", real.ConnectionString, file);
        var stderr = p.StandardError.ReadToEndAsync();
        // The first expectation's line comes once the steps run: the database goes away under them.
        string? line;
        while ((line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))) is not null && !line.Contains("pass step 2")) { }
        Assert.NotNull(line);
        var cut = System.Diagnostics.Stopwatch.StartNew();
        proxy.Cut();
        var rest = await p.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var err = await stderr;
        Assert.True(p.ExitCode == 3, $"exit {p.ExitCode}\n{rest}\n{err}");
        Assert.Contains("unreachable for", err);
        Assert.Contains("(limit 2s", err);
        Assert.DoesNotContain("Unhandled exception", err);
        Assert.DoesNotContain("scenarios passed", rest); // stopped, not finished
        Assert.True(cut.Elapsed < TimeSpan.FromSeconds(20), $"exit 3 came {cut.Elapsed.TotalSeconds:0}s after the cut (the asks' timeout is 30 s)");
    }

    /// <summary>The database lost as a run ends: its events are all written, and the record of its end
    /// waits for the database as the journal's writes do (before, the run exited 3 at once, its record
    /// left without an end: `runs` said stopped). The end is held on the record's row, locked by the test,
    /// while the connection to the database is cut; the database comes back 2 s later.</summary>
    [Fact]
    public async Task A_run_whose_database_goes_away_as_it_ends_records_its_end_once_it_is_back()
    {
        var (p, id, port, stdout, stderr) = await RunWhoseEndIsCutAsync("30s");
        using var _ = p;
        await Task.Delay(TimeSpan.FromSeconds(2));
        var real = new Npgsql.NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable("ACTORSIM_DB"));
        using var back = ActorSim.Tests.CuttableProxy.OnPort(port, real.Port);
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var output = await stdout;
        Assert.True(p.ExitCode == 0, output + await stderr);
        Assert.Contains("invariants: hold", output);
        Assert.Matches(@"\n  database unreachable \(\w+Exception\): the run's end waits to be recorded \(limit 30s\)", output);
        Assert.DoesNotContain("ObjectDisposedException", output); // the cause is named, not Npgsql's wrapper
        Assert.Contains("database back: the run's end recorded", output);
        Assert.Equal("ended", CrashRecoveryTests.Status(id));
    }

    /// <summary>... and past the outage limit: exit 3 saying the end is not recorded, after the summary.</summary>
    [Fact]
    public async Task A_run_whose_database_stays_away_as_it_ends_exits_3_at_the_limit_after_its_summary()
    {
        var (p, id, _, stdout, stderr) = await RunWhoseEndIsCutAsync("2s");
        using var __ = p;
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var (output, err) = (await stdout, await stderr);
        Assert.True(p.ExitCode == 3, output + err);
        Assert.Contains("invariants: hold", output);
        Assert.Contains($"(limit 2s, ", err);
        Assert.Contains($"the end of run '{id}' is not recorded (runs shows it stopped); what was acknowledged is in the database", err);
        Assert.Equal("stopped", CrashRecoveryTests.Status(id));
    }

    /// <summary>A 4 s run through a proxy to the database, whose record of its end is held on its row (a
    /// lock the test takes once the run is under way), and the proxy cut once that write waits: the run,
    /// its id, the port of the proxy (the database's address for the run) and its output to come.</summary>
    private static async Task<(Process P, string Id, int Port, Task<string> Stdout, Task<string> Stderr)> RunWhoseEndIsCutAsync(string outageLimit)
    {
        Assert.False(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ACTORSIM_DB")), "ACTORSIM_DB is not set: run through scripts/test.sh");
        var real = new Npgsql.NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable("ACTORSIM_DB"));
        using var proxy = new ActorSim.Tests.CuttableProxy(real.Port);
        var port = proxy.Port; // a listener stopped (cut) says the port it was asked for: 0
        var viaProxy = new Npgsql.NpgsqlConnectionStringBuilder(real.ConnectionString) { Port = port }.ConnectionString;
        var id = $"endcut-{Guid.NewGuid():N}"[..19];
        var p = Cli.Start(new Dictionary<string, string?> { ["ACTORSIM_OUTAGE_LIMIT"] = outageLimit },
            "run", "--duration", "4s", "--vms", "1", "--vcpus", "1", "--run-id", id, "--db", viaProxy);
        // The first progress line comes after the run's record is written: its row can be locked.
        while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line && !line.Contains("t=")) { }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await using var locker = new Npgsql.NpgsqlConnection(real.ConnectionString);
        await locker.OpenAsync();
        await using var tx = await locker.BeginTransactionAsync();
        await using (var l = new Npgsql.NpgsqlCommand("select 1 from actorsim.mt_doc_runinfo where id = @id for update", locker, tx))
        {
            l.Parameters.AddWithValue("id", id);
            Assert.Equal(1, await l.ExecuteScalarAsync());
        }
        // Watched from a session of its own (a transaction sees one snapshot of pg_stat_activity).
        await using var watcher = new Npgsql.NpgsqlConnection(real.ConnectionString);
        await watcher.OpenAsync();
        await using var blocked = new Npgsql.NpgsqlCommand("select count(*) from pg_stat_activity where @locker = any(pg_blocking_pids(pid))", watcher);
        blocked.Parameters.AddWithValue("locker", locker.ProcessID);
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((long)(await blocked.ExecuteScalarAsync())! == 0)
        {
            Assert.True(DateTime.UtcNow < until && !p.HasExited, $"the run's end was never written: {(p.HasExited ? await stdout + await stderr : "")}");
            await Task.Delay(50);
        }
        proxy.Cut();
        await tx.RollbackAsync();
        return (p, id, port, stdout, stderr);
    }

    [Fact]
    public void A_junit_report_of_scenarios_the_database_did_not_let_start_is_removed()
    {
        var report = Path.Combine(Path.GetTempPath(), $"actorsim-tests-{Environment.ProcessId}", "unreachable.xml");
        Directory.CreateDirectory(Path.GetDirectoryName(report)!);
        File.WriteAllText(report, "stale");
        var (exit, _, _) = Cli.Run("scenario", "--junit", report, "--db", "Host=127.0.0.1;Port=1;Username=u;Password=p;Database=x",
            Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml"));
        Assert.Equal(3, exit);
        Assert.False(File.Exists(report)); // neither a stale report nor an empty one
    }

    /// <summary>... but a report that goes to a pipe or a device is never removed: `--junit /dev/null` with
    /// the database unreachable deleted /dev/null (as root). Here a FIFO stands for it.</summary>
    [Fact]
    public async Task A_junit_report_into_a_pipe_is_not_removed_when_the_database_does_not_let_the_scenarios_start()
    {
        var (dir, fifo) = await Cli.FifoAsync("report");
        var reading = Task.Run(() => File.ReadAllText(fifo)); // the report is opened before anything runs
        var (exit, _, err) = Cli.Run("scenario", "--junit", fifo, "--db", "Host=127.0.0.1;Port=1;Username=u;Password=p;Database=x",
            Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml"));
        Assert.True(exit == 3, err);
        Assert.Equal("", await reading.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(ActorSim.Persistence.EventLog.SpecialFiles.IsSpecial(fifo), "the FIFO is gone");
        Directory.Delete(dir, true);
    }

    /// <summary>A scenario ended by a signal (at once) leaves no report: it is created before anything runs,
    /// and was left empty.</summary>
    [Fact]
    public async Task A_scenario_ended_by_a_signal_leaves_no_junit_report()
    {
        var report = Path.Combine(Path.GetTempPath(), $"actorsim-tests-{Environment.ProcessId}", $"{Guid.NewGuid():N}.xml");
        Directory.CreateDirectory(Path.GetDirectoryName(report)!);
        using var p = Cli.Start(null, "scenario", "--junit", report, Cli.LongScenario(3000));
        try
        {
            while (await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line && !line.Contains("pass step")) { }
            Assert.True(File.Exists(report));
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) await kill.WaitForExitAsync();
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(143, p.ExitCode);
            Assert.False(File.Exists(report));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
    }

    /// <summary>A connection string Npgsql cannot read is bad input: exit 2 at once (no attempts to
    /// connect), naming a key it knows, never a value nor an unknown key (a mistyped secret).</summary>
    [Theory]
    [InlineData("Host=127.0.0.1;Port=abc;Password=TopSecret123", " (at 'port')")]
    [InlineData("Host=127.0.0.1;TopSecret123", "\n")]
    [InlineData("Host=127.0.0.1;TopSecret123=1", "\n")]
    public void A_connection_string_that_does_not_parse_exits_2_without_its_values(string db, string tail)
    {
        foreach (var args in new[] { new[] { "runs", "--db", db }, ["run", "--rounds", "1", "--db", db] })
        {
            var (exit, output, err) = Cli.Run(args);
            Assert.True(exit == 2, $"{exit} {output} {err}");
            Assert.Contains("actorsim database: the connection string (--db) is not one Npgsql reads" + tail, err);
            Assert.DoesNotContain("TopSecret123", err + output);
        }
    }
}
