using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ActorSim.Host.Tests;

/// <summary>The built actorsim against the local PostgreSQL (ACTORSIM_DB, set by scripts/test.sh):
/// run → export → replay, tampering, re-deciding under 6.8, import of a bad file.</summary>
public class EndToEndTests : IClassFixture<EndToEndTests.RecordedRun>
{
    private readonly RecordedRun _run;
    public EndToEndTests(RecordedRun run) => _run = run;

    public static (int Exit, string Out, string Err) Actorsim(params string[] args) => Cli.Run(args);

    /// <summary>One short recorded run (6.9), exported once, shared by the tests.</summary>
    public sealed class RecordedRun
    {
        public string Id { get; }
        public string File { get; }
        public string RunOutput { get; }

        public RecordedRun()
        {
            Assert.False(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ACTORSIM_DB")), "ACTORSIM_DB is not set: run through scripts/test.sh");
            var (exit, output, err) = Actorsim("run", "--duration", "3s", "--seed", "5", "--vms", "2", "--vcpus", "3");
            Assert.True(exit == 0, output + err);
            RunOutput = output;
            Id = Regex.Match(output, "^run: (\\S+)", RegexOptions.Multiline).Groups[1].Value;
            Assert.NotEmpty(Id);
            File = Path.Combine(Path.GetTempPath(), $"{Id}.jsonl");
            var ex = Actorsim("export", "--run", Id, "-o", File);
            Assert.True(ex.Exit == 0, ex.Out + ex.Err);
        }
    }

    [Fact]
    public void Run_prints_its_id_first_progress_and_a_summary_with_invariants_holding()
    {
        var lines = _run.RunOutput.Split('\n');
        Assert.StartsWith("run: ", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("summary: run "));
        Assert.Contains(lines, l => l.Trim() == "invariants: hold");
    }

    /// <summary>`summary` reads the read side: its counts are the event log's, for the recorded run and
    /// for an import of it (whose decisions are rows of the other read-side table).</summary>
    [Fact]
    public void Summary_counts_what_the_event_log_holds_for_the_run_and_its_import()
    {
        var copy = _run.Id + "_sum"; // '_' is a plain character in a run id
        Assert.Equal(0, Actorsim("import", _run.File, "--as", copy).Exit);
        var lines = File.ReadAllLines(_run.File).Skip(1).ToList();
        var decisions = Cli.Decisions(_run.File).ToList();
        foreach (var id in new[] { _run.Id, copy })
        {
            var (exit, output, err) = Actorsim("summary", "--run", id, "--json");
            Assert.True(exit == 0, output + err);
            using var doc = JsonDocument.Parse(output);
            var s = doc.RootElement;
            Assert.Equal(lines.Count, s.GetProperty("events").GetInt64());
            Assert.Equal(decisions.Count, s.GetProperty("decisions").GetInt64());
            foreach (var result in decisions.GroupBy(d => d.GetProperty("outcome").GetProperty("result").GetString()!))
                Assert.Equal(result.Count(), s.GetProperty("byResult").GetProperty(result.Key).GetInt64());
            Assert.Equal(0, s.GetProperty("invariantViolations").GetInt64());
            Assert.Equal(id == copy ? "imported" : "ended", s.GetProperty("status").GetString());
        }
        var text = Actorsim("summary", "--run", _run.Id);
        Assert.True(text.Exit == 0, text.Out + text.Err);
        Assert.Contains($"run {_run.Id} (ended)", text.Out);
        Assert.Contains($"{lines.Count} events, {decisions.Count} decisions", text.Out);
        Assert.Contains("invariants: hold", text.Out);
        var missing = Actorsim("summary", "--run", "no-such-run-" + Guid.NewGuid().ToString("N"));
        Assert.Equal(2, missing.Exit);
        Assert.Contains("no run 'no-such-run-", missing.Err);
        Assert.Equal(0, Actorsim("delete", copy).Exit);
    }

    [Fact]
    public void Export_follows_the_contract_and_every_decision_verifies_from_file_and_database()
    {
        var lines = File.ReadAllLines(_run.File);
        using var header = JsonDocument.Parse(lines[0]);
        Assert.Equal("actorsim-event-log", header.RootElement.GetProperty("format").GetString());
        Assert.Equal(lines.Length - 1, header.RootElement.GetProperty("events").GetInt64());
        Assert.Contains(lines, l => l.Contains("\"type\":\"stage2_fault_resolved\""));
        var fromFile = Actorsim("replay", "--file", _run.File, "--verify");
        Assert.True(fromFile.Exit == 0, fromFile.Out + fromFile.Err);
        Assert.Contains("every decision reproduces", fromFile.Out);
        var fromDb = Actorsim("replay", "--run", _run.Id, "--verify");
        Assert.Equal(0, fromDb.Exit);
    }

    [Fact]
    public void A_tampered_decision_fails_verification_at_its_seq()
    {
        var lines = File.ReadAllLines(_run.File);
        var i = Array.FindIndex(lines, l => l.Contains("\"type\":\"stage2_fault_resolved\"") && l.Contains("\"result\":\"Mapped\"") && l.Contains("\"memAttr\"") == false && l.Contains("\"path\":\"MapLeaf\""));
        Assert.True(i > 0);
        lines[i] = lines[i].Replace("\"path\":\"MapLeaf\"", "\"path\":\"SpuriousSameLeaf\"");
        var tampered = Path.Combine(Path.GetTempPath(), $"{_run.Id}-tampered.jsonl");
        File.WriteAllText(tampered, string.Join("\n", lines) + "\n");
        var (exit, output, _) = Actorsim("replay", "--file", tampered, "--verify");
        Assert.Equal(1, exit);
        var seq = JsonDocument.Parse(lines[i]).RootElement.GetProperty("seq").GetInt64();
        Assert.Contains($"MISMATCH at seq {seq} ", output);
        Assert.Contains("recorded:", output);
        Assert.Contains("recomputed:", output);
        Assert.Contains("differs in path: recorded (SpuriousSameLeaf), recomputed (MapLeaf)", output);
    }

    [Fact]
    public void Replaying_a_6_9_run_under_6_8_changes_exactly_the_Normal_NC_decisions_to_Device_nGnRE()
    {
        var (exit, output, err) = Actorsim("replay", "--file", _run.File, "--kernel", "6.8", "--json");
        Assert.True(exit == 0, output + err);
        using var r = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        var changes = r.RootElement.GetProperty("changes").EnumerateArray().ToArray();
        Assert.NotEmpty(changes);
        Assert.All(changes, c =>
        {
            Assert.EndsWith("Normal-NC", c.GetProperty("before").GetString());
            Assert.EndsWith("Device-nGnRE", c.GetProperty("after").GetString());
        });
        // The decisions that left a Normal-NC leaf (MemAttr 5 in descriptor bits 5:2), read from the file.
        var nc = 0;
        foreach (var d in Cli.Decisions(_run.File))
        {
            var leaf = d.GetProperty("outcome").GetProperty("leaf");
            if (leaf.ValueKind == JsonValueKind.Null) continue;
            var desc = Convert.ToUInt64(leaf.GetProperty("descriptor").GetString()![2..], 16);
            if (((desc >> 2) & 0xF) == 5) nc++;
        }
        Assert.True(nc > 0);
        Assert.Equal(nc, r.RootElement.GetProperty("changed").GetInt64());
        Assert.Equal(nc, changes.Sum(c => c.GetProperty("count").GetInt64()));
    }

    /// <summary>Without FWB 6.9 encodes a Normal leaf's attribute otherwise and decides the same: nothing
    /// changes, though the stage-2 leaves the re-decisions leave differ from the run's and the run's vCPUs
    /// raced each other (a leaf mapped, relaxed or taken between a fault and mmu_lock).</summary>
    [Fact]
    public void Replaying_under_a_policy_that_decides_alike_changes_nothing()
    {
        var (exit, output, err) = Actorsim("replay", "--file", _run.File, "--no-fwb", "--json");
        Assert.True(exit == 0, output + err);
        using var r = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        Assert.True(r.RootElement.GetProperty("decisions").GetInt64() > 0, output);
        Assert.Equal(0, r.RootElement.GetProperty("changed").GetInt64());
    }

    /// <summary>The other way: a 6.8 run's BARs were mmapped without VM_ALLOW_ANY_UNCACHED, which 6.9's VFIO
    /// sets; re-decided under 6.9 they map Normal-NC (it said "0 of N decisions change").</summary>
    [Fact]
    public void Replaying_a_6_8_run_under_6_9_maps_its_VFIO_BAR_pages_Normal_NC()
    {
        var file = Path.Combine(Path.GetTempPath(), $"e2e-6.8-{Guid.NewGuid():N}.jsonl");
        try
        {
            var (exit, output, err) = Actorsim("run", "--in-memory", "--kernel", "6.8", "--rounds", "60", "--seed", "5", "--export", file);
            Assert.True(exit == 0, output + err);
            (exit, output, err) = Actorsim("replay", "--file", file, "--kernel", "6.9", "--json");
            Assert.True(exit == 0, output + err);
            using var r = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
            var changes = r.RootElement.GetProperty("changes").EnumerateArray().ToArray();
            Assert.NotEmpty(changes);
            Assert.All(changes, c =>
            {
                // Only the memory type: "Mapped" stays "Mapped", and a spurious fault that found its leaf
                // ("AlreadyMapped") finds the Normal-NC one 6.9 had mapped.
                var before = c.GetProperty("before").GetString()!;
                Assert.EndsWith(" Device-nGnRE", before);
                Assert.Equal(before.Replace(" Device-nGnRE", " Normal-NC"), c.GetProperty("after").GetString());
            });
            Assert.Contains(changes, c => c.GetProperty("after").GetString() == "Mapped Normal-NC");
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>A 6.17 run re-decided without FWB: the memslots over the Grace Hopper GPU's cacheable USEMEM
    /// would be refused (KVM_SET_USER_MEMORY_REGION -EINVAL), from the file (its header's policy) and from
    /// the database (the run's record), and the guest's accesses there find no memslot (an MMIO exit; an exec
    /// an injected abort), not user_mem_abort's -EFAULT; under 6.9 none is.</summary>
    [Fact]
    public void Replaying_a_6_17_run_without_FWB_names_the_memslots_that_would_be_refused()
    {
        var id = $"e2e-617-{Guid.NewGuid():N}";
        var file = Path.Combine(Path.GetTempPath(), $"{id}.jsonl");
        try
        {
            var (exit, output, err) = Actorsim("run", "--kernel", "6.17", "--rounds", "30", "--seed", "5", "--run-id", id, "--export", file);
            Assert.True(exit == 0, output + err);
            foreach (var source in new[] { new[] { "--file", file }, ["--run", id] })
            {
                (exit, output, err) = Actorsim(["replay", .. source, "--no-fwb", "--json"]);
                Assert.True(exit == 0, output + err);
                using var r = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
                var refused = r.RootElement.GetProperty("memslots_refused_examples").EnumerateArray().ToArray();
                var count = r.RootElement.GetProperty("memslots_refused").GetInt64(); // the workload sets one a VM at its start
                Assert.True(count >= 2, output);
                Assert.Equal(["vm1", "vm2"], refused.Select(m => m.GetProperty("vm").GetString()).Distinct().Order());
                Assert.All(refused, m => Assert.Equal("EINVAL", m.GetProperty("errno").GetString()));
                var afters = r.RootElement.GetProperty("changes").EnumerateArray().Select(c => c.GetProperty("after").GetString()).ToArray();
                Assert.Contains("MmioExit", afters);
                Assert.All(afters, a => Assert.True(a is "MmioExit" or "GuestAbort ENOEXEC", output));

                (exit, output, err) = Actorsim(["replay", .. source, "--no-fwb"]);
                Assert.True(exit == 0, output + err);
                Assert.Contains($"  {count} memslots set in the run would be refused (their faults counted above as finding no memslot):\n", output);
                Assert.Matches(@"\n  e\.g\. seq \d+ vm1 slot \d+ gpa 0x[0-9a-f]+\.\.0x[0-9a-f]+: KVM_SET_USER_MEMORY_REGION -> EINVAL\n", output);

                (exit, output, err) = Actorsim(["replay", .. source, "--kernel", "6.9", "--no-fwb", "--json"]);
                Assert.True(exit == 0, output + err);
                using var nc = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
                Assert.Equal(0, nc.RootElement.GetProperty("memslots_refused").GetInt64());
            }

            // Its events without its record (a journal written by other code): the run's policy is not known,
            // so its memslots are not decided again, and the replay says so.
            using (var conn = new Npgsql.NpgsqlConnection(Environment.GetEnvironmentVariable("ACTORSIM_DB")))
            {
                conn.Open();
                using var forget = new Npgsql.NpgsqlCommand($"delete from {Persistence.MartenStores.DefaultSchema}.mt_doc_runinfo where id = @r", conn);
                forget.Parameters.AddWithValue("r", id);
                Assert.Equal(1, forget.ExecuteNonQuery());
            }
            (exit, output, err) = Actorsim("replay", "--run", id, "--no-fwb", "--json");
            Assert.True(exit == 0, output + err);
            Assert.Equal($"actorsim replay: run '{id}' has no run record, so not the policy it was recorded under: its memslots were not decided again", err.Trim());
            using var unknown = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
            Assert.Equal(0, unknown.RootElement.GetProperty("memslots_refused").GetInt64());
            Assert.All(unknown.RootElement.GetProperty("changes").EnumerateArray(), c => Assert.Equal("Error EFAULT", c.GetProperty("after").GetString()));
            (exit, _, err) = Actorsim("replay", "--run", id);
            Assert.True((exit, err) == (0, ""), err);
        }
        finally
        {
            File.Delete(file);
            Assert.Equal(0, Actorsim("delete", id).Exit);
        }
    }

    /// <summary>A shipped scenario run through the real journal, its decisions verified from the database
    /// and from the exported file, which import and export give back byte for byte; then
    /// <paramref name="check"/> with the run's id, the file and its lines. The runs are deleted after.</summary>
    private void RecordedScenario(string scenario, Action<string, string, string[]> check)
    {
        var (exit, output, err) = Actorsim("scenario", Path.Combine(Cli.Repo, "scenarios", scenario));
        Assert.True(exit == 0, output + err);
        var id = Regex.Match(output, "^run: (\\S+)", RegexOptions.Multiline).Groups[1].Value;
        Assert.NotEmpty(id);
        var file = Path.Combine(Path.GetTempPath(), $"{id}.jsonl");
        var again = Path.Combine(Path.GetTempPath(), $"{id}-copy.jsonl");
        try
        {
            (exit, output, err) = Actorsim("replay", "--run", id, "--verify");
            Assert.True(exit == 0, output + err);
            Assert.Contains("every decision reproduces", output);
            Assert.Equal(0, Actorsim("export", "--run", id, "-o", file).Exit);
            var lines = File.ReadAllLines(file);
            (exit, output, err) = Actorsim("replay", "--file", file, "--verify");
            Assert.True(exit == 0, output + err);
            Assert.Contains("every decision reproduces", output);
            Assert.Equal(0, Actorsim("import", file, "--as", id + "-copy").Exit);
            Assert.Equal(0, Actorsim("export", "--run", id + "-copy", "-o", again).Exit);
            Assert.Equal(lines.Skip(1), File.ReadAllLines(again).Skip(1));
            check(id, file, lines);
        }
        finally
        {
            File.Delete(file);
            File.Delete(again);
            Actorsim("delete", id + "-copy");
            Assert.Equal(0, Actorsim("delete", id).Exit);
        }
    }

    /// <summary>The shipped scenario of accesses without a valid syndrome, through the real journal:
    /// vm1's ENOSYS decisions carry "nisv", vm2's (KVM_CAP_ARM_NISV_TO_USER) carry "nisvToUser" as well and
    /// exit to the VMM; all verify from the database and from the file, survive import and export byte for
    /// byte, and explain names them.</summary>
    [Fact]
    public void Accesses_without_a_valid_syndrome_are_recorded_with_nisv_and_verify() => RecordedScenario("no-valid-syndrome.yaml", (id, _, lines) =>
    {
        Assert.Equal(5, lines.Count(l => l.Contains("\"nisv\":true},\"outcome\":{\"result\":\"Error\",\"errno\":\"ENOSYS\"", StringComparison.Ordinal)));
        Assert.Equal(12, lines.Count(l => l.Contains("\"nisv\":true", StringComparison.Ordinal)));
        Assert.DoesNotContain(lines, l => l.Contains("\"nisv\":false", StringComparison.Ordinal)); // written only when set
        // vm2: every decision carries the VM's capability; three exit with KVM_EXIT_ARM_NISV, none fails.
        Assert.Equal(7, lines.Count(l => l.Contains("\"vm\":\"vm2\"", StringComparison.Ordinal) && l.Contains("\"nisvToUser\":true}", StringComparison.Ordinal)));
        Assert.Equal(3, lines.Count(l => l.Contains("\"nisv\":true,\"nisvToUser\":true},\"outcome\":{\"result\":\"NisvExit\",\"errno\":\"None\"", StringComparison.Ordinal)));
        Assert.DoesNotContain(lines, l => l.Contains("\"nisvToUser\":", StringComparison.Ordinal) && (l.Contains("\"vm\":\"vm1\"", StringComparison.Ordinal) || l.Contains("ENOSYS", StringComparison.Ordinal)));
        var (exit, output, err) = Actorsim("explain", "--run", id, "--vm", "vm1", "--gpa", "0x50000000");
        Assert.True(exit == 0, output + err);
        Assert.Matches(@"\n  seq \d+ \(since\): fault: vcpu 0 write \(no valid syndrome\) -> Error via NoValidSyndrome \(-ENOSYS\)\n", output);
        Assert.Contains("fault: seq", output);
        Assert.Contains(" read (no valid syndrome) at gpa 0x50000000", output);
        (exit, output, err) = Actorsim("explain", "--run", id, "--vm", "vm2", "--gpa", "0x50001000");
        Assert.True(exit == 0, output + err);
        Assert.Matches(@"\n  seq \d+: fault: vcpu 0 write \(no valid syndrome\) -> NisvExit via NisvExitToUser\n", output);
    });

    /// <summary>The shipped GICv2 scenario through the real journal: KVM's own mappings of the CPU interface
    /// are recorded as they were made (stage2_device_ioremapped, Device leaves), verify, survive import and
    /// export byte for byte, and explain says KVM made them.</summary>
    [Fact]
    public void The_GICv2_CPU_interface_KVM_maps_itself_is_recorded_and_explained() => RecordedScenario("gicv2-cpu-interface-stays-device.yaml", (id, file, lines) =>
    {
        var ioremaps = lines.Where(l => l.Contains("\"type\":\"stage2_device_ioremapped\"", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, ioremaps.Length);
        Assert.Contains("\"stream\":\"kvm-vm1\"", ioremaps[0]);
        Assert.Contains("\"data\":{\"vm\":\"vm1\",\"gpa\":\"0x8010000\",\"pa\":\"0x2c060000\",\"leaves\":[{\"gpa\":\"0x8010000\",\"level\":3,", ioremaps[0]);
        Assert.Equal(2, ioremaps[0].Split("KVM_PGTABLE_PROT_DEVICE").Length - 1);
        var (exit, output, err) = Actorsim("explain", "--run", id, "--vm", "vm1", "--gpa", "0x8011000");
        Assert.True(exit == 0, output + err);
        Assert.Contains("now: Device-nGnRE (MemAttr 0x1), L3 leaf at gpa 0x8011000 -> pfn 0x2c061, writable, XN", output);
        Assert.Matches(@"\nno decision mapped this page: KVM mapped it itself at seq \d+ \(kvm_phys_addr_ioremap\)\n", output);
        Assert.Matches(@"\n  seq \d+: ioremap: KVM mapped 0x8010000\.\.0x8012000 to device memory at 0x2c060000 itself \(kvm_phys_addr_ioremap", output);
        (exit, output, err) = Actorsim("replay", "--file", file, "--kernel", "6.8", "--no-fwb", "--verify");
        Assert.True(exit == 0, output + err);
        Assert.Contains("every decision reproduces", output);
    });

    /// <summary>The shipped scenario of stage-1 walks and cache maintenance, through the real journal
    /// (compact entries, the bits in the op's number): its decisions carry "s1ptw" and "cm" (with
    /// "nisv"), verify from the database and from the file, survive import and export byte for byte,
    /// and explain names them.</summary>
    [Fact]
    public void Stage1_walks_and_cache_maintenance_are_recorded_and_verify() => RecordedScenario("stage1-walk-and-cache-maintenance.yaml", (id, file, lines) =>
    {
        Assert.Equal(5, lines.Count(l => l.Contains("\"memcacheTopUpFails\":false,\"s1ptw\":true}", StringComparison.Ordinal)));
        Assert.Equal(4, lines.Count(l => l.Contains("\"memcacheTopUpFails\":false,\"nisv\":true,\"cm\":true}", StringComparison.Ordinal)));
        Assert.Equal(2, lines.Count(l => l.Contains("\"outcome\":{\"result\":\"InstructionSkipped\"", StringComparison.Ordinal)));
        var (exit, output, err) = Actorsim("explain", "--run", id, "--vm", "vm1", "--gpa", "0x1000");
        Assert.True(exit == 0, output + err);
        Assert.Contains(" read (stage-1 walk) at gpa 0x1000", output);
        Assert.Matches(@"\n  seq \d+ \(since\): fault: vcpu 0 write \(stage-1 walk\) -> GuestAbort via S1ptwInjectDabt\n", output);
        (exit, output, err) = Actorsim("explain", "--file", file, "--vm", "vm1", "--gpa", "0x60000000");
        Assert.True(exit == 0, output + err);
        Assert.Contains(" read (cache maintenance, no valid syndrome) at gpa 0x60000000", output);
    });

    /// <summary>The shipped scenario of an MTE guest and a 36-bit VM on a CPU with MTE, through the real
    /// journal: the run and its file's header say the CPU had MTE (and import keeps it), the guest's RAM
    /// VMA is VM_MTE_ALLOWED, its decisions carry vmHasMte and the other VM's its IPA size.</summary>
    [Fact]
    public void An_MTE_guest_and_a_smaller_IPA_space_are_recorded_and_verify() => RecordedScenario("mte-guest-and-ipa-size.yaml", (id, file, lines) =>
    {
        Assert.Contains("\"cpu\":{\"fwb\":true,\"dic\":true,\"mte\":true}", lines[0]);
        Assert.Contains(lines, l => l.Contains("\"type\":\"vma_mapped\"", StringComparison.Ordinal) && l.Contains("\"VM_MTE_ALLOWED\"", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("\"vm\":\"tagged\"", StringComparison.Ordinal) && l.Contains("\"vmHasMte\":true,\"ipaBits\":40", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("\"vm\":\"small\"", StringComparison.Ordinal) && l.Contains("\"vmHasMte\":false,\"ipaBits\":36", StringComparison.Ordinal));
        var (exit, output, err) = Actorsim("summary", "--run", id);
        Assert.True(exit == 0, output + err);
        Assert.Contains("  kernel 6.9 fwb=1 dic=1 mte=1 word=64", output);
        var copy = Path.Combine(Path.GetTempPath(), $"{id}-copy-again.jsonl");
        try
        {
            Assert.Equal(0, Actorsim("export", "--run", id + "-copy", "-o", copy).Exit);
            Assert.Equal(lines[0].Replace(id, id + "-copy"), File.ReadLines(copy).First());
        }
        finally { File.Delete(copy); }
    });

    [Fact]
    public void Export_import_export_is_byte_identical()
    {
        var copy = _run.Id + "-copy";
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        Assert.Equal(0, Actorsim("import", _run.File, "--as", copy).Exit);
        // `runs` says it was imported, and when (an event log does not say when its run started: not 1970).
        var listed = Actorsim("runs", "--json").Out;
        Assert.Contains("+00:00\"", listed); // a time's '+' as it is, not \u002B
        using (var runs = System.Text.Json.JsonDocument.Parse(listed))
        {
            var r = runs.RootElement.EnumerateArray().Single(x => x.GetProperty("id").GetString() == copy);
            Assert.InRange(r.GetProperty("imported").GetDateTimeOffset(), before, DateTimeOffset.UtcNow.AddSeconds(1));
            Assert.Equal(r.GetProperty("imported").GetDateTimeOffset(), r.GetProperty("started").GetDateTimeOffset());
        }
        Assert.Matches($@"(?m)^{copy} .* \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  imported *$", Actorsim("runs").Out);
        var again = Path.Combine(Path.GetTempPath(), $"{copy}.jsonl");
        Assert.Equal(0, Actorsim("export", "--run", copy, "-o", again).Exit);
        var original = File.ReadAllText(_run.File);
        Assert.Equal(original.Replace($"\"run\":\"{_run.Id}\"", $"\"run\":\"{copy}\""), File.ReadAllText(again));
        Assert.Equal(2, Actorsim("import", _run.File, "--as", copy).Exit); // the run exists: refused
    }

    [Fact]
    public void A_damaged_stored_event_exits_2_naming_its_stream_and_version_and_the_run_stays()
    {
        var copy = _run.Id + "-damaged";
        Assert.Equal(0, Actorsim("import", _run.File, "--as", copy).Exit);
        // One entry's binary record given an unknown format byte, as a newer build's or a damaged one would be.
        using (var conn = new Npgsql.NpgsqlConnection(Environment.GetEnvironmentVariable("ACTORSIM_DB")))
        {
            conn.Open();
            using var damage = new Npgsql.NpgsqlCommand(
                $"update {Persistence.MartenStores.DefaultSchema}.mt_events set bdata = set_byte(bdata, 0, 9) where stream_id = @s and version = 3 and bdata is not null", conn);
            damage.Parameters.AddWithValue("s", copy + "/kvm-vm1");
            Assert.Equal(1, damage.ExecuteNonQuery());
        }
        var (exit, output, err) = Actorsim("replay", "--run", copy, "--verify");
        Assert.True(exit == 2, $"exit {exit}: {output}{err}");
        Assert.Contains("stream " + copy + "/kvm-vm1 version 3: journal entry: unknown binary format 9", err);
        Assert.DoesNotContain("   at ", err); // a message, not a stack trace
        Assert.Contains(copy, Actorsim("runs").Out);
    }

    /// <summary>A run's streams are "{run}/{stream}", found by that prefix: imported as "a/b", a run's events
    /// were also run "a"'s (`summary --run a` counted them, `delete a` would have deleted them), and an
    /// empty id ended the import on an unhandled exception (exit 134).</summary>
    [Theory]
    [InlineData("--as", "")]
    [InlineData("--as", "suite/one")]
    [InlineData("header", "suite/two")]
    [InlineData("--as", "suite\tthree")]
    public void An_import_under_an_id_that_cannot_name_a_run_exits_2_and_writes_nothing(string from, string id)
    {
        id = id.Replace("suite", $"suite{Guid.NewGuid():N}"); // a prefix no other run has
        var file = _run.File;
        string[] args = ["import", file, "--as", id];
        if (from == "header")
        {
            file = Path.Combine(Path.GetTempPath(), $"{_run.Id}-header-id.jsonl");
            var lines = File.ReadAllLines(_run.File);
            lines[0] = lines[0].Replace($"\"run\":\"{_run.Id}\"", $"\"run\":\"{id}\"");
            File.WriteAllLines(file, lines);
            args = ["import", file];
        }
        var (exit, output, err) = Actorsim(args);
        Assert.True(exit == 2, $"exit {exit}: {output}{err}");
        var shown = id.Replace("\t", "\\u0009"); // a control character as an escape
        Assert.Contains(from == "header" ? $"{file}:1: run: '{shown}' is not a run id" : $"--as: '{shown}' is not a run id", err);
        Assert.DoesNotContain("   at ", err);
        var prefix = id.Split('/', '\t')[0];
        if (prefix.Length > 0) Assert.Contains($"no run '{prefix}'", Actorsim("summary", "--run", prefix).Err); // nothing written under it
    }

    /// <summary>Every command given a run the database has not says so the same way; `replay` and `explain`
    /// said "has no events" of it. A run that is only its record (its set-up cut short) has no events.</summary>
    [Theory]
    [InlineData("summary")]
    [InlineData("export", "-o", "no-run.jsonl")]
    [InlineData("replay")]
    [InlineData("replay", "--verify")]
    [InlineData("explain", "--vm", "vm0", "--gpa", "0x1000")]
    public async Task A_run_that_is_not_there_is_said_to_be_no_run_by_every_command(string command, params string[] rest)
    {
        var none = $"no-such-run-{Guid.NewGuid():N}";
        var exported = Path.Combine(Path.GetTempPath(), none + ".jsonl");
        rest = [.. rest.Select(r => r == "no-run.jsonl" ? exported : r)];
        var (exit, output, err) = Actorsim([command, "--run", none, .. rest]);
        Assert.Equal((2, "", $"actorsim {command}: no run '{none}' (actorsim runs lists them)"), (exit, output, err.Trim()));
        Assert.False(File.Exists(exported), "export of no run left a file");

        if (command is not ("replay" or "explain")) return;
        var recordOnly = $"record-only-{Guid.NewGuid():N}";
        var store = Persistence.MartenStores.Get(Environment.GetEnvironmentVariable("ACTORSIM_DB")!);
        await using (var session = store.LightweightSession())
        {
            session.Store(new Persistence.ReadSide.RunInfo { Id = recordOnly, Kernel = "6.9" });
            await session.SaveChangesAsync();
        }
        try
        {
            (exit, output, err) = Actorsim([command, "--run", recordOnly, .. rest]);
            Assert.Equal((2, "", $"actorsim {command}: run '{recordOnly}' has no events"), (exit, output, err.Trim()));
        }
        finally { Assert.Equal(0, Actorsim("delete", recordOnly).Exit); }
    }

    /// <summary>Only a seeded run goes on: `run --resume` of anything else says what it is instead of
    /// "no resumable run".</summary>
    [Fact]
    public void Resuming_what_is_not_a_seeded_run_says_why_not()
    {
        var imported = _run.Id + "-resume-imported";
        Assert.Equal(0, Actorsim("import", _run.File, "--as", imported).Exit);
        var (exit, _, err) = Actorsim("run", "--resume", imported);
        Assert.Equal((2, $"actorsim run: run '{imported}' was imported: an event log does not record the workload (VMs x vCPUs) to continue"), (exit, err.Trim()));

        var scenario = Actorsim("scenario", Path.Combine(Cli.Repo, "scenarios", "o05-ram-is-normal.yaml"));
        Assert.True(scenario.Exit == 0, scenario.Out + scenario.Err);
        var scenarioRun = System.Text.RegularExpressions.Regex.Match(scenario.Out, @"(?m)^run: (\S+)").Groups[1].Value;
        (exit, _, err) = Actorsim("run", "--resume", scenarioRun);
        Assert.Equal(2, exit);
        Assert.Contains($"run '{scenarioRun}' is scenario ", err);

        var none = $"no-such-run-{Guid.NewGuid():N}";
        (exit, _, err) = Actorsim("run", "--resume", none);
        Assert.Equal((2, $"actorsim run: no run '{none}' (actorsim runs lists them)"), (exit, err.Trim()));
    }

    [Theory]
    [InlineData("suite/one", "suite-one-")]
    [InlineData("tab\tand\nnewline", "tab-and-newline-")] // a control character broke `runs`' table
    public void A_scenario_name_with_a_slash_or_a_control_character_gives_a_run_id_without_one(string name, string start)
    {
        var id = Database.NewRunId(name);
        Assert.True(Database.IsNewRunId(id), id);
        Assert.StartsWith(start, id);
    }

    [Fact]
    public void Importing_a_truncated_file_exits_2_names_the_line_and_writes_nothing()
    {
        var lines = File.ReadAllLines(_run.File);
        var truncated = Path.Combine(Path.GetTempPath(), $"{_run.Id}-truncated.jsonl");
        File.WriteAllText(truncated, string.Join("\n", lines.Take(20)) + "\n" + lines[20][..(lines[20].Length / 2)]);
        var id = _run.Id + "-trunc";
        var (exit, _, err) = Actorsim("import", truncated, "--as", id);
        Assert.Equal(2, exit);
        Assert.Contains($"{truncated}:21: ", err);
        Assert.Equal(2, Actorsim("export", "--run", id, "-o", truncated + ".out").Exit); // no such run
        Assert.DoesNotContain(id, Actorsim("runs").Out);
    }

    /// <summary>An import holds the run's lock while it writes, as run and scenario do: another import of
    /// the same id at that moment (here: the lock held by the test's session) is refused with exit 2 and
    /// writes nothing. Two at once used to both pass the "exists already" check, and the second failed on
    /// the streams' key: "database error", exit 3.</summary>
    [Fact]
    public async Task An_import_of_a_run_another_process_is_writing_is_refused_and_writes_nothing()
    {
        var id = _run.Id + "-locked";
        // Not pooled: closing it ends the session, and the lock.
        await using var conn = new Npgsql.NpgsqlConnection(new Npgsql.NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable("ACTORSIM_DB")) { Pooling = false }.ConnectionString);
        await conn.OpenAsync();
        await using (var take = new Npgsql.NpgsqlCommand("select pg_advisory_lock(1095985517, hashtext(@run))", conn))
        {
            take.Parameters.AddWithValue("run", id);
            await take.ExecuteNonQueryAsync();
        }
        var (exit, output, err) = Actorsim("import", _run.File, "--as", id);
        Assert.Equal((2, "", $"actorsim import: run '{id}' is being written by another actorsim (it holds the run's lock)"), (exit, output, err.Trim()));
        Assert.Equal(2, Actorsim("summary", "--run", id).Exit);
        await conn.CloseAsync(); // the lock goes with the session
        Assert.Equal(0, Actorsim("import", _run.File, "--as", id).Exit);
        Assert.Equal(0, Actorsim("delete", id).Exit);
    }

    /// <summary>`export -o` a pipe (here a FIFO, standing for /dev/stdout piped on): the log alone goes
    /// into it, the "exported" line to stderr, and the FIFO stays one (the log was renamed over it).
    /// `import` of a pipe is refused: it reads its file twice, and the second reading found it empty.</summary>
    [Fact]
    public async Task Export_into_a_pipe_writes_the_log_alone_and_import_refuses_a_pipe()
    {
        var (dir, fifo) = await Cli.FifoAsync("log");
        var reading = Task.Run(() => File.ReadAllText(fifo));
        var (exit, output, err) = Actorsim("export", "--run", _run.Id, "-o", fifo);
        Assert.True(exit == 0, err);
        Assert.Equal("", output);
        Assert.Contains($"exported {File.ReadLines(_run.File).Count() - 1} events of run {_run.Id} to {fifo}", err);
        Assert.Equal(File.ReadAllText(_run.File), await reading.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal([fifo], Directory.GetFiles(dir));
        (exit, output, err) = Actorsim("import", fifo, "--as", _run.Id + "-pipe");
        Assert.Equal(2, exit);
        Assert.Contains($"actorsim import: {fifo}: not a regular file", err);
        Directory.Delete(dir, true);
    }

    /// <summary>"-" is the standard output where a command writes a file (-o, --export, --metrics, --junit) and
    /// the standard input where it reads a log (--file, import), as in other Unix tools: `export -o - |
    /// replay --file -` wrote a file named "-" and then replayed that file.</summary>
    [Fact]
    public void A_dash_is_the_standard_output_for_an_output_and_the_standard_input_for_a_log()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"dash-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var events = File.ReadLines(_run.File).Count() - 1;
            var (exit, output, err) = Cli.Sh($"set -o pipefail; cd {dir} && $ACTORSIM export --run {_run.Id} -o - | $ACTORSIM replay --file - --verify");
            Assert.True(exit == 0, output + err);
            Assert.StartsWith($"replayed {events} events, ", output);
            Assert.Contains($"exported {events} events of run {_run.Id} to /dev/stdout", err);

            (exit, output, err) = Cli.Sh($"set -o pipefail; cd {dir} && $ACTORSIM run --in-memory --rounds 20 --seed 3 --export - | $ACTORSIM explain --file - --vm vm1 --gpa 0x40000000");
            Assert.True(exit == 0, output + err);
            Assert.StartsWith("explain vm1 gpa 0x40000000 (", output);
            Assert.Contains("summary: run", err); // the run's lines on stderr

            (exit, output, err) = Cli.Sh($"cd {dir} && $ACTORSIM run --in-memory --rounds 20 --seed 3 --metrics -");
            Assert.True(exit == 0, err);
            Assert.All(output.TrimEnd('\n').Split('\n'), l => Assert.StartsWith("{\"time\":", l));

            (exit, output, err) = Cli.Sh($"cd {dir} && $ACTORSIM scenario --in-memory --junit - {Path.Combine(Cli.Repo, "scenarios", "o05-ram-is-normal.yaml")}");
            Assert.True(exit == 0, output + err);
            Assert.StartsWith("<?xml", output);

            // A scenario from the standard input, from a pipe and from a file sent to it; named /dev/stdin.
            var o05 = Path.Combine(Cli.Repo, "scenarios", "o05-ram-is-normal.yaml");
            (exit, output, err) = Cli.Sh($"set -o pipefail; cd {dir} && cat {o05} | $ACTORSIM scenario --in-memory -");
            Assert.True(exit == 0, output + err);
            Assert.Contains("scenario o05-ram-is-normal (/dev/stdin, kernel 6.9", output);
            Assert.Contains("1 scenarios passed, 0 failed", output);
            (exit, output, err) = Cli.Sh($"cd {dir} && $ACTORSIM run --scenario - --in-memory < {o05}");
            Assert.True(exit == 0, output + err);
            Assert.Contains("1 scenarios passed, 0 failed", output);
            (exit, output, err) = Cli.Sh($"cd {dir} && printf 'name: x\\nkernel: \"6.9\"\\nsteps: [ {{ teleport: 1 }} ]\\n' | $ACTORSIM scenario --in-memory -");
            Assert.Equal(2, exit);
            Assert.StartsWith("actorsim scenario: /dev/stdin:3: steps[]: unknown step 'teleport'", err);
            (exit, _, err) = Cli.Sh($"cd {dir} && head -c 1048577 /dev/zero | tr '\\0' '#' | $ACTORSIM scenario --in-memory -");
            Assert.Equal(2, exit);
            Assert.Contains("actorsim scenario: /dev/stdin: larger than 1048576 bytes", err);
            (exit, _, err) = Cli.Sh($"cd {dir} && $ACTORSIM scenario --in-memory - - < {o05}");
            Assert.Equal(2, exit);
            Assert.Equal("actorsim scenario: - is given twice: the standard input is read once", err.Trim());

            // import reads its file twice: from a pipe, refused as any pipe is; from a file sent to it, read.
            (exit, _, err) = Cli.Sh($"cd {dir} && cat {_run.File} | $ACTORSIM import - --as {_run.Id}-dash");
            Assert.Equal(2, exit);
            Assert.Contains("actorsim import: /dev/stdin: not a regular file (import reads its file twice", err); // (and cat's broken pipe)
            (exit, output, err) = Cli.Sh($"cd {dir} && $ACTORSIM import - --as {_run.Id}-dash < {_run.File}");
            Assert.True(exit == 0, output + err);
            Assert.Equal(0, Actorsim("delete", $"{_run.Id}-dash").Exit);
            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>An output named as the standard output (/dev/stdout, /dev/fd/1, a link to one) while that is
    /// a file (`&gt; F`, `&gt;&gt; F`) goes into that file at its end, alone, and the name stays: `export -o
    /// /dev/stdout &gt; F` took /dev/stdout for F and, as root, renamed the log over the /dev/stdout link (F
    /// empty); `run --export /dev/stdout` wrote the run's lines into the log. Here a link to /proc/self/fd/1
    /// stands for /dev/stdout, so a build that gets it wrong replaces only the link.</summary>
    [Fact]
    public void An_output_named_as_the_standard_output_goes_alone_into_the_file_it_is_sent_to()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"stdout-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var link = Path.Combine(dir, "stdout");
        File.CreateSymbolicLink(link, "/proc/self/fd/1");
        var exported = Path.Combine(dir, "export.jsonl");
        var (exit, output, err) = Cli.Sh($"$ACTORSIM export --run {_run.Id} -o {link} > {exported}");
        Assert.True(exit == 0, err);
        Assert.Equal(File.ReadAllText(_run.File), File.ReadAllText(exported));
        Assert.Contains($"exported {File.ReadLines(_run.File).Count() - 1} events of run {_run.Id} to {link}", err);

        var appended = Path.Combine(dir, "run.jsonl");
        (exit, output, err) = Cli.Sh($"echo before > {appended}; $ACTORSIM run --in-memory --rounds 20 --seed 3 --export {link} >> {appended}");
        Assert.True(exit == 0, err);
        var lines = File.ReadAllLines(appended);
        Assert.Equal("before", lines[0]);
        using (var header = System.Text.Json.JsonDocument.Parse(lines[1]))
        {
            Assert.Equal("actorsim-event-log", header.RootElement.GetProperty("format").GetString());
            Assert.Equal(lines.Length - 2, header.RootElement.GetProperty("events").GetInt64());
        }
        Assert.All(lines.Skip(2), l => Assert.StartsWith("{\"seq\":", l));
        Assert.Contains("summary: run", err); // the run's lines on stderr

        var metrics = Path.Combine(dir, "metrics.jsonl");
        (exit, output, err) = Cli.Sh($"echo before > {metrics}; $ACTORSIM run --in-memory --rounds 20 --seed 3 --metrics {link} >> {metrics}");
        Assert.True(exit == 0, err);
        lines = File.ReadAllLines(metrics);
        Assert.Equal("before", lines[0]);
        Assert.All(lines.Skip(1), l => Assert.StartsWith("{\"time\":", l));
        Assert.Contains("summary: run", err);

        var report = Path.Combine(dir, "report.xml");
        var scenario = Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml");
        (exit, output, err) = Cli.Sh($"echo before > {report}; $ACTORSIM scenario --in-memory --junit {link} {scenario} >> {report}");
        Assert.True(exit == 0, err);
        lines = File.ReadAllLines(report);
        Assert.Equal("before", lines[0]);
        Assert.Equal("testsuites", System.Xml.Linq.XDocument.Parse(string.Join("\n", lines.Skip(1))).Root!.Name.LocalName);
        Assert.Contains("1 scenarios passed, 0 failed", err);
        // Nothing ran (the database unreachable): a report is removed, a name of the standard output is not.
        (exit, output, err) = Cli.Sh($"$ACTORSIM scenario --db 'Host=127.0.0.1;Port=1;Username=u;Password=p;Database=d' --junit {link} {scenario} >> {report}");
        Assert.True(exit == 3, err);

        Assert.Equal("/proc/self/fd/1", new FileInfo(link).LinkTarget);
        Assert.Equal(new[] { exported, metrics, report, appended, link }.Order(), Directory.GetFiles(dir).Order()); // nothing left beside
        Directory.Delete(dir, true);
    }

    /// <summary>`export -o /dev/stdout | head`: once the reader has gone, export ends without a word, as a
    /// command SIGPIPE ends does (141); it said "cannot write: Broken pipe" and exited 2, bad input.</summary>
    [Fact]
    public void An_export_into_a_pipe_whose_reader_has_gone_ends_quietly()
    {
        var (exit, output, err) = Cli.Sh($"set -o pipefail; $ACTORSIM export --run {_run.Id} -o /dev/stdout | head -c 10");
        Assert.Equal((141, "{\"format\":", ""), (exit, output, err));
    }

    /// <summary>A run records the commit actorsim was built from (`runs --json`), the one `version` names, and
    /// whether that build had uncommitted changes (as `version` says it, and `summary`);
    /// resumed by another build, it keeps that commit and the resume says which build goes on with it.</summary>
    [Fact]
    public async Task A_run_records_the_commit_its_build_came_from_and_a_resume_by_another_build_says_so()
    {
        var id = $"e2e-commit-{Guid.NewGuid():N}";
        var (exit, output, err) = Actorsim("run", "--rounds", "5", "--run-id", id);
        Assert.True(exit == 0, err);
        var (recorded, modified) = Commit(id);
        Assert.NotNull(recorded);
        var version = Actorsim("version").Out;
        Assert.Contains($" (commit {recorded}{(modified ? " with uncommitted changes" : "")})\n", version);
        Assert.Contains($", commit {recorded[..12]}{(modified ? " with uncommitted changes" : "")}\n", Actorsim("summary", "--run", id).Out);

        (exit, output, err) = Actorsim("run", "--resume", id, "--rounds", "2");
        Assert.True(exit == 0, err);
        Assert.DoesNotContain("was started by build", err); // the same build

        var store = Persistence.MartenStores.Get(Environment.GetEnvironmentVariable("ACTORSIM_DB")!);
        await using (var session = store.LightweightSession())
        {
            var info = (await session.LoadAsync<Persistence.ReadSide.RunInfo>(id))!;
            info.Commit = new string('0', 40); // as if another build had started it
            session.Store(info);
            await session.SaveChangesAsync();
        }
        (exit, output, err) = Actorsim("run", "--resume", id, "--rounds", "2");
        Assert.True(exit == 0, err);
        Assert.Contains($"actorsim run: note: run '{id}' was started by build 0000000; this is build {recorded![..7]}, whose events it gets from now on (the run records the first)", err);
        Assert.Equal(new string('0', 40), Commit(id).Commit);

        static (string? Commit, bool Modified) Commit(string run)
        {
            var (exit, output, err) = Actorsim("runs", "--json");
            Assert.True(exit == 0, err);
            using var doc = JsonDocument.Parse(output);
            var r = doc.RootElement.EnumerateArray().Single(r => r.GetProperty("id").GetString() == run);
            return (r.GetProperty("commit").GetString(), r.GetProperty("commitModified").GetBoolean());
        }
    }

    /// <summary>`run --export /dev/stdout | head`, `run --metrics /dev/stdout | head` and `scenario --junit
    /// /dev/stdout ... | head`: the reader gone, the run goes on to its end and is recorded, then the
    /// command ends as one SIGPIPE ends (141), its summary on stderr and no "cannot write" said; each
    /// said "cannot write: Broken pipe" and exited 2, bad input.</summary>
    [Fact]
    public void A_run_or_scenario_writing_into_a_pipe_whose_reader_has_gone_ends_as_SIGPIPE_ends_it()
    {
        var id = $"e2e-pipe-{Guid.NewGuid():N}";
        var (exit, output, err) = Cli.Sh($"set -o pipefail; $ACTORSIM run --rounds 200 --seed 3 --run-id {id} --export /dev/stdout | head -c 10");
        Assert.True(exit == 141, err);
        Assert.Equal("{\"format\":", output);
        Assert.Contains($"summary: run {id}", err);
        Assert.DoesNotContain("cannot write", err);
        Assert.Equal("ended", CrashRecoveryTests.Status(id)); // run in full and recorded

        // A metrics line a second: the reader leaves after the first, the second finds it gone.
        (exit, output, err) = Cli.Sh("set -o pipefail; $ACTORSIM run --in-memory --duration 3s --metrics /dev/stdout | head -c 8");
        Assert.True(exit == 141, err);
        Assert.Equal("{\"time\":", output);
        Assert.Contains("summary: run", err);
        Assert.DoesNotContain("cannot write", err);

        // 50 scenarios: a report (~1.8 KB each) larger than a pipe holds (64 KiB), so its writing meets the reader gone.
        var scenario = Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml");
        (exit, output, err) = Cli.Sh($"set -o pipefail; $ACTORSIM scenario --in-memory --junit /dev/stdout {string.Join(' ', Enumerable.Repeat(scenario, 50))} | head -c 5");
        Assert.True(exit == 141, err);
        Assert.Equal("<?xml", output);
        Assert.Contains("50 scenarios passed, 0 failed", err);
        Assert.DoesNotContain("cannot write", err);
    }

    /// <summary>`export` ended by a signal leaves no part file: here it waits to write into a FIFO nobody
    /// reads, its part file in its temporary directory (TMPDIR), when SIGTERM comes (before, Ctrl-C of a
    /// 900 k-event export left its 72 MB OUTPUT.part).</summary>
    [Fact]
    public async Task An_export_ended_by_a_signal_leaves_no_part_file()
    {
        var (dir, fifo) = await Cli.FifoAsync("log");
        var tmp = Path.Combine(dir, "tmp");
        Directory.CreateDirectory(tmp);
        using var p = Cli.Start(new Dictionary<string, string?> { ["TMPDIR"] = tmp }, "export", "--run", _run.Id, "-o", fifo);
        try
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (Directory.GetFiles(tmp, "*.part").Length == 0)
            {
                Assert.True(DateTime.UtcNow < until && !p.HasExited, $"no part file: {(p.HasExited ? await p.StandardError.ReadToEndAsync() : "")}");
                await Task.Delay(20);
            }
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) await kill.WaitForExitAsync();
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(143, p.ExitCode);
            Assert.Empty(Directory.GetFiles(tmp, "*.part")); // (the runtime's diagnostics sockets are there too)
            Assert.Equal([fifo], Directory.GetFiles(dir));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
        Directory.Delete(dir, true);
    }

    /// <summary>Import, export, replay and explain on a terminal say how far they are, on one line of
    /// stderr drawn at the first event and once a second, cleared before their last line (a million
    /// events took 83 s to import, silent until then); with stderr not a terminal, nothing. script(1)
    /// gives the command a terminal. Only the first line is looked for: how many follow depends on the
    /// machine (a CI machine exported a 6 s run's log in under a second).</summary>
    [Fact]
    public async Task Import_export_replay_and_explain_on_a_terminal_say_how_far_they_are()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"progress-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var file = Path.Combine(dir, "log.jsonl");
            Assert.Equal(0, Actorsim("run", "--in-memory", "--vms", "2", "--vcpus", "2", "--rounds", "20", "--export", file).Exit);
            var events = File.ReadLines(file).Count() - 1;
            var id = $"progress-{Guid.NewGuid():N}"[..20];
            async Task<string> OnATerminal(params string[] args)
            {
                var psi = new ProcessStartInfo("script") { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var x in new[] { "-qefc", $"dotnet {Cli.Dll} {string.Join(' ', args)}", Path.Combine(dir, "typescript") }) psi.ArgumentList.Add(x);
                psi.Environment.Remove("CI");
                using var p = Process.Start(psi)!;
                var screen = p.StandardOutput.ReadToEndAsync();
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
                Assert.True(p.ExitCode == 0, await screen + await p.StandardError.ReadToEndAsync());
                return await screen;
            }
            var screen = await OnATerminal("import", file, "--as", id);
            Assert.Matches($@"\rimporting run {id}: \d+ of {events} events \(\d+%\)", screen);
            Assert.Contains($"\r\u001b[Kimported {events} events as run {id}", screen);
            screen = await OnATerminal("export", "--run", id, "-o", Path.Combine(dir, "again.jsonl"));
            Assert.Matches($@"\rexporting run {id}: \d+ events", screen);
            Assert.Contains($"\r\u001b[Kexported {events} events of run {id}", screen);
            screen = await OnATerminal("replay", "--run", id, "--verify");
            Assert.Matches($@"\rreplaying run {id}: \d+ events", screen);
            Assert.Contains($"\r\u001b[Kreplayed {events} events", screen);
            screen = await OnATerminal("explain", "--run", id, "--vm", "vm1", "--gpa", "0x40000000");
            Assert.Matches($@"\rreading run {id}: \d+ events", screen);
            Assert.Contains($"\r\u001b[Kexplain vm1 gpa 0x40000000 ({events} events)", screen);
            screen = await OnATerminal("explain", "--file", file, "--vm", "vm1", "--gpa", "0x40000000");
            Assert.Matches($@"\rreading {Regex.Escape(file)}: \d+ of {events} events", screen);
            Assert.Contains($"\r\u001b[Kexplain vm1 gpa 0x40000000 ({events} events)", screen);
            var (exit, output, err) = Actorsim("replay", "--run", id);
            Assert.True(exit == 0 && err.Length == 0, output + err);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>A database that refuses the import's writes (here: every transaction read-only) is an
    /// infrastructure failure: exit 3 with PostgreSQL's reason, no password printed, nothing imported.
    /// (Marten wraps the error; it used to escape as an unhandled exception, exit 134.)</summary>
    [Fact]
    public void An_import_the_database_refuses_exits_3_and_imports_nothing()
    {
        var cs = Environment.GetEnvironmentVariable("ACTORSIM_DB")!;
        var id = _run.Id + "-ro";
        var (exit, output, err) = Actorsim("import", _run.File, "--as", id, "--db", cs + ";Options=-c default_transaction_read_only=on");
        Assert.True(exit == 3, $"{exit} {output} {err}");
        Assert.Contains($"actorsim import: database {Persistence.MartenStores.Describe(cs)} (--db): ", err);
        Assert.Contains("read-only transaction", err);
        Assert.DoesNotContain("password", err, StringComparison.OrdinalIgnoreCase); // (the test role's password is "actorsim", as the program's name)
        Assert.DoesNotContain(cs, err);
        Assert.DoesNotContain(id, Actorsim("runs").Out);
    }

    [Fact]
    public void A_gap_in_seq_is_refused_with_file_line_and_field()
    {
        var lines = File.ReadAllLines(_run.File).ToList();
        lines.RemoveAt(5);
        var gap = Path.Combine(Path.GetTempPath(), $"{_run.Id}-gap.jsonl");
        File.WriteAllText(gap, string.Join("\n", lines) + "\n");
        var (exit, _, err) = Actorsim("import", gap, "--as", _run.Id + "-gap");
        Assert.Equal(2, exit);
        Assert.Contains($"{gap}:6: seq: gap", err);
    }

    /// <summary>event-log-format.md: refused "with file:line and the field" — a field deep in an event's
    /// data by its path, through import, replay and explain alike; nothing imported.</summary>
    [Fact]
    public void A_bad_field_in_an_event_is_named_by_its_path()
    {
        var lines = File.ReadAllLines(_run.File);
        var n = Array.FindIndex(lines, l => l.Contains("\"type\":\"stage2_faults_resolved\"", StringComparison.Ordinal)
            && l.Contains("\"slot\":{\"id\":", StringComparison.Ordinal));
        Assert.True(n > 0, "a batch of decisions in a memslot");
        var line = System.Text.Json.Nodes.JsonNode.Parse(lines[n])!;
        var decisions = line["data"]!["decisions"]!.AsArray();
        var last = decisions.Count - 1;
        decisions[last]!["inputs"]!["slot"]!.AsObject().Remove("id");
        var bad = Path.Combine(Path.GetTempPath(), $"{_run.Id}-field.jsonl");
        File.WriteAllLines(bad, [.. lines[..n], line.ToJsonString(), .. lines[(n + 1)..]]);
        var why = $"{bad}:{n + 1}: data.decisions[{last}].inputs.slot.id: missing";
        foreach (var args in new[]
        {
            new[] { "replay", "--file", bad, "--verify" },
            ["import", bad, "--as", _run.Id + "-field"],
            ["explain", "--file", bad, "--vm", "vm1", "--gpa", "0x1000"],
        })
        {
            var (exit, output, err) = Actorsim(args);
            Assert.Equal((2, "", $"actorsim {args[0]}: {why}"), (exit, output, err.Trim()));
        }
        Assert.DoesNotContain(_run.Id + "-field", Actorsim("runs").Out);
        File.Delete(bad);
    }

    /// <summary>An error that quotes a value of the log shows its control characters escaped: an escape
    /// sequence in an event's type or the header's kernel was printed as written (it could clear the screen).</summary>
    [Fact]
    public void An_event_log_error_quoting_control_characters_shows_them_escaped()
    {
        var lines = File.ReadAllLines(_run.File);
        var badType = Path.Combine(Path.GetTempPath(), $"{_run.Id}-ctl-type.jsonl");
        File.WriteAllLines(badType, [lines[0], System.Text.RegularExpressions.Regex.Replace(lines[1], "\"type\":\"[a-z0-9_]+\"", "\"type\":\"x\\u001b[2J\""), .. lines[2..]]);
        var badHeader = Path.Combine(Path.GetTempPath(), $"{_run.Id}-ctl-kernel.jsonl");
        File.WriteAllLines(badHeader, [lines[0].Replace("\"kernel\":\"6.9\"", "\"kernel\":\"6\\u001b9\""), .. lines[1..]]);
        foreach (var (args, why) in new[]
        {
            (new[] { "replay", "--file", badType }, $"{badType}:2: type: unknown event type 'x\\u001b[2J'"),
            (["import", badType, "--as", _run.Id + "-ctl"], $"{badType}:2: type: unknown event type 'x\\u001b[2J'"),
            (["explain", "--file", badType, "--vm", "vm1", "--gpa", "0x1000"], $"{badType}:2: type: unknown event type 'x\\u001b[2J'"),
            (["replay", "--file", badHeader], $"{badHeader}:1: kernel: unknown rule set '6\\u001b9'"),
        })
        {
            var (exit, output, err) = Actorsim(args);
            Assert.Equal((2, "", $"actorsim {args[0]}: {why}"), (exit, output, err.Trim()));
        }
        File.Delete(badType);
        File.Delete(badHeader);
    }

    [Fact]
    public void A_byte_order_mark_or_a_directory_is_refused_with_exit_2_and_says_so()
    {
        var bom = Path.Combine(Path.GetTempPath(), $"{_run.Id}-bom.jsonl");
        File.WriteAllBytes(bom, [0xEF, 0xBB, 0xBF, .. File.ReadAllBytes(_run.File)]);
        var (exit, _, err) = Actorsim("import", bom, "--as", _run.Id + "-bom");
        Assert.Equal(2, exit);
        Assert.Contains($"{bom}:1: json: starts with a byte order mark", err);
        Assert.DoesNotContain(_run.Id + "-bom", Actorsim("runs").Out);
        var dir = Path.GetTempPath();
        foreach (var args in new[] { new[] { "import", dir }, ["replay", "--file", dir], ["scenario", "--in-memory", dir] })
        {
            var r = Actorsim(args);
            Assert.True(r.Exit == 2, $"{string.Join(' ', args)}: {r.Exit} {r.Err}");
            Assert.Contains("a directory, not a file", r.Err);
        }
    }

    [Fact]
    public void Explain_tells_the_chain_behind_a_page()
    {
        var line = File.ReadLines(_run.File).First(l => l.Contains("\"type\":\"stage2_fault_resolved\"") && l.Contains("\"path\":\"MapLeaf\"") && l.Contains("VM_ALLOW_ANY_UNCACHED"));
        using var d = JsonDocument.Parse(line);
        var inputs = d.RootElement.GetProperty("data").GetProperty("decision").GetProperty("inputs");
        var (exit, output, err) = Actorsim("explain", "--run", _run.Id, "--vm", inputs.GetProperty("vm").GetString()!, "--gpa", inputs.GetProperty("gpa").GetString()!);
        Assert.True(exit == 0, output + err);
        Assert.Contains("memslot: slot", output);
        Assert.Contains("mapping: VMA", output);
        Assert.Contains("VM_ALLOW_ANY_UNCACHED", output);
        Assert.Contains("fault: seq", output);
        Assert.Contains("device memory maps Normal-NC", output);
    }

    /// <summary>The page faulted most often in the run: explain lists its other faults and its
    /// invalidations in the order they happened, each marked before or since the fault that made the
    /// leaf it has (or had).</summary>
    [Fact]
    public void Explain_lists_a_pages_history_in_order_around_its_fault()
    {
        var page = Cli.Decisions(_run.File).Select(d => d.GetProperty("inputs"))
            .GroupBy(i => (Vm: i.GetProperty("vm").GetString()!, Page: Convert.ToUInt64(i.GetProperty("gpa").GetString()!, 16) & ~0xFFFUL))
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        var (exit, output, err) = Actorsim("explain", "--run", _run.Id, "--vm", page.Vm, "--gpa", $"0x{page.Page:x}");
        Assert.True(exit == 0, output + err);
        var lines = output.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("history of the page (", StringComparison.Ordinal));
        var fault = long.Parse(Regex.Match(output, "^fault: seq (\\d+)", RegexOptions.Multiline).Groups[1].Value);
        var history = lines.Select(l => Regex.Match(l, "^  seq (\\d+) \\((before that fault|since)\\): ")).Where(m => m.Success)
            .Select(m => (Seq: long.Parse(m.Groups[1].Value), Before: m.Groups[2].Value == "before that fault")).ToArray();
        Assert.NotEmpty(history);
        Assert.True(history.Zip(history.Skip(1)).All(p => p.Item1.Seq < p.Item2.Seq), output);
        Assert.All(history, h => Assert.Equal(h.Seq < fault, h.Before));
        // Each invalidation names its cause; a notifier's hva range covers the page's hva.
        var slot = Regex.Match(output, "^memslot: slot \\d+ gpa 0x([0-9a-f]+)\\.\\.0x[0-9a-f]+ -> hva 0x([0-9a-f]+)", RegexOptions.Multiline);
        Assert.True(slot.Success, output);
        var hva = Convert.ToUInt64(slot.Groups[2].Value, 16) + (page.Page - Convert.ToUInt64(slot.Groups[1].Value, 16));
        foreach (var line in lines.Where(l => l.Contains("invalidation: ")))
        {
            Assert.Matches("\\((MMU notifier .*|memslot change)\\)$", line);
            if (Regex.Match(line, "MMU notifier \\w+ of hva 0x([0-9a-f]+)\\.\\.0x([0-9a-f]+)") is { Success: true } n)
                Assert.InRange(hva, Convert.ToUInt64(n.Groups[1].Value, 16), Convert.ToUInt64(n.Groups[2].Value, 16) - 1);
        }
    }

    /// <summary>explain --json says what the text says, in fields: the same page, fault, decision and
    /// history, the fault's inputs those of its decision record in the event log.</summary>
    [Fact]
    public void Explain_json_holds_what_the_text_says()
    {
        var page = Cli.Decisions(_run.File).Select(d => d.GetProperty("inputs"))
            .GroupBy(i => (Vm: i.GetProperty("vm").GetString()!, Page: Convert.ToUInt64(i.GetProperty("gpa").GetString()!, 16) & ~0xFFFUL))
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        string[] args = ["explain", "--run", _run.Id, "--vm", page.Vm, "--gpa", $"0x{page.Page:x}"];
        var text = Actorsim(args);
        var json = Actorsim([.. args, "--json"]);
        Assert.True(json.Exit == 0, json.Out + json.Err);
        using var doc = JsonDocument.Parse(json.Out);
        var x = doc.RootElement;
        Assert.Equal(_run.Id, x.GetProperty("run").GetString());
        Assert.Equal($"0x{page.Page:x}", x.GetProperty("gpa").GetString());
        var fault = x.GetProperty("fault");
        Assert.Contains($"fault: seq {fault.GetProperty("seq").GetInt64()} vcpu {fault.GetProperty("vcpu").GetInt32()} {fault.GetProperty("op").GetString()} at gpa {fault.GetProperty("gpa").GetString()}", text.Out);
        Assert.Contains($"decision: {fault.GetProperty("result").GetString()} via {fault.GetProperty("path").GetString()}, prot {fault.GetProperty("prot").GetString()}: {fault.GetProperty("why").GetString()}", text.Out);
        var now = x.GetProperty("now");
        Assert.Equal(now.ValueKind == JsonValueKind.Null, text.Out.Contains("now: unmapped at stage 2"));
        if (now.ValueKind != JsonValueKind.Null) Assert.Contains($"now: {now.GetProperty("memType").GetString()} (MemAttr 0x{now.GetProperty("memAttr").GetInt32():x})", text.Out);
        var history = x.GetProperty("history").EnumerateArray().ToList();
        Assert.Contains($"history of the page ({history.Count}):", text.Out);
        foreach (var h in history)
        {
            Assert.Contains($"  seq {h.GetProperty("seq").GetInt64()} ({(h.GetProperty("when").GetString() == "before" ? "before that fault" : "since")}): {h.GetProperty("text").GetString()}", text.Out);
            Assert.Contains($"\"text\":\"{h.GetProperty("text").GetString()}\"", json.Out); // as written: "->", not "-\u003E"
        }
        // The fault is a decision of the event log, with these inputs.
        Assert.Contains(Cli.Decisions(_run.File).Select(d => d.GetProperty("inputs")), i =>
            i.GetProperty("vm").GetString() == page.Vm && i.GetProperty("gpa").GetString() == fault.GetProperty("gpa").GetString()
            && i.GetProperty("hva").GetString() == fault.GetProperty("hva").GetString() && i.GetProperty("vcpu").GetInt32() == fault.GetProperty("vcpu").GetInt32()
            && i.GetProperty("sampledSeq").GetString() == fault.GetProperty("sampledSeq").GetString()
            && i.GetProperty("seqAtLock").GetString() == fault.GetProperty("seqAtLock").GetString()
            && i.GetProperty("pfn").GetProperty("pfn").GetString() == fault.GetProperty("pfn").GetString());
    }

    /// <summary>A new run under the id of a recorded one is refused: its actors would recover the old
    /// run's state and set up again on top of it; so is resuming it with a setting it fixes. Nothing is
    /// written.</summary>
    [Fact]
    public void A_run_under_an_existing_id_is_refused_and_writes_nothing()
    {
        var file = Path.Combine(Path.GetTempPath(), $"{_run.Id}-again.jsonl");
        var before = Actorsim("export", "--run", _run.Id, "-o", file);
        Assert.True(before.Exit == 0, before.Err);
        var beforeLines = File.ReadAllLines(file);
        var (exit, output, err) = Actorsim("run", "--rounds", "3", "--run-id", _run.Id);
        Assert.True(exit == 2, $"{exit} {output} {err}");
        Assert.Contains($"actorsim run: run '{_run.Id}' exists already (--resume {_run.Id} continues it; or give another --run-id)", err);
        // Resuming it with options the recorded run fixes: refused too, rather than ignored.
        (exit, output, err) = Actorsim("run", "--resume", _run.Id, "--rounds", "3", "--kernel", "6.8");
        Assert.True(exit == 2, $"{exit} {output} {err}");
        Assert.Contains("actorsim run: --kernel does not apply to --resume (the recorded run sets it)", err);
        Assert.Equal(0, Actorsim("export", "--run", _run.Id, "-o", file).Exit);
        Assert.Equal(beforeLines, File.ReadAllLines(file));
        File.Delete(file);
    }

    [Fact]
    public void Explain_of_a_vm_the_run_does_not_have_exits_2_and_names_the_runs_vms()
    {
        foreach (var source in new[] { new[] { "--run", _run.Id }, ["--file", _run.File] })
        {
            var (exit, output, err) = Actorsim(["explain", .. source, "--vm", "vm9", "--gpa", "0x40000000"]);
            Assert.True(exit == 2, $"{exit} {output} {err}");
            Assert.Contains("actorsim explain: --vm: run '" + _run.Id + "' has no VM 'vm9' (its VMs: vm1, vm2)", err);
        }
    }

    [Fact]
    public void Runs_lists_the_recorded_run_as_json()
    {
        var (exit, output, _) = Actorsim("runs", "--json");
        Assert.Equal(0, exit);
        using var runs = JsonDocument.Parse(output);
        Assert.Contains(runs.RootElement.EnumerateArray(), r => r.GetProperty("id").GetString() == _run.Id && r.GetProperty("kernel").GetString() == "6.9");
    }
}

/// <summary>Determinism end to end: the same seed in deterministic mode exports the same bytes.</summary>
public class DeterministicRunTests
{
    [Fact]
    public void Two_deterministic_runs_with_one_seed_export_byte_identical_logs()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"det-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string Run(string name, bool deterministic)
        {
            var file = Path.Combine(dir, name);
            var args = new List<string> { "run", "--in-memory", "--seed", "7", "--rounds", "40", "--run-id", "det7", "--export", file };
            if (deterministic) args.Add("--deterministic");
            var (exit, output, err) = EndToEndTests.Actorsim([.. args]);
            Assert.True(exit == 0, output + err);
            return file;
        }
        var a = File.ReadAllBytes(Run("a.jsonl", true));
        var b = File.ReadAllBytes(Run("b.jsonl", true));
        Assert.True(a.Length > 10_000);
        Assert.Equal(a, b);
        // Written as the events came (EventLogSink): the part file is gone once the log is whole.
        Assert.Equal(["a.jsonl", "b.jsonl"], Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var verify = EndToEndTests.Actorsim("replay", "--file", Path.Combine(dir, "a.jsonl"), "--verify");
        Assert.True(verify.Exit == 0, verify.Out);
        // The log names the build that made it, as `export --run` does (it said "commit":null).
        var commit = System.Text.RegularExpressions.Regex.Match(EndToEndTests.Actorsim("version").Out, @"\(commit ([0-9a-f]{40})").Groups[1].Value;
        using var header = JsonDocument.Parse(File.ReadLines(Path.Combine(dir, "a.jsonl")).First());
        Assert.Equal(commit, header.RootElement.GetProperty("commit").GetString());
    }

    /// <summary>On the Marten journal too (it then commits inside its own turn): two runs with one seed,
    /// each under an id of its own, record the same events in the same order and at the same virtual
    /// times — in what they export as they run and in the database's global order (<c>export --run</c>).</summary>
    [Fact]
    public void Two_deterministic_runs_on_the_database_record_the_same_events_in_the_same_order()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"detdb-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        (string[] AsRun, string[] Stored) Run(string name)
        {
            var id = $"det-{name}-{Guid.NewGuid():N}";
            var (exit, output, err) = EndToEndTests.Actorsim("run", "--deterministic", "--seed", "7", "--vms", "3", "--vcpus", "4", "--rounds", "300",
                "--run-id", id, "--export", Path.Combine(dir, $"{name}.jsonl"));
            Assert.True(exit == 0, output + err);
            var ex = EndToEndTests.Actorsim("export", "--run", id, "-o", Path.Combine(dir, $"{name}-db.jsonl"));
            Assert.True(ex.Exit == 0, ex.Out + ex.Err);
            return (File.ReadAllLines(Path.Combine(dir, $"{name}.jsonl"))[1..], File.ReadAllLines(Path.Combine(dir, $"{name}-db.jsonl"))[1..]);
        }
        var a = Run("a");
        var b = Run("b");
        Directory.Delete(dir, recursive: true);
        Assert.True(a.Stored.Length > 1_000, $"only {a.Stored.Length} events");
        Assert.Contains(a.Stored, l => l.Contains("\"type\":\"mmu_invalidate_began\"")); // zaps race the faults
        Assert.Equal(a.AsRun, b.AsRun);
        Assert.Equal(a.Stored, b.Stored);
        // Virtual time (SimClock): from the Unix epoch, a millisecond a round; the set-up before the first
        // round at 0. The journal stamps an event with the time it wrote it, the run's export with the time
        // it was published: the same, in this mode, for every event (the orders may differ: a pipelined
        // write is published before it is written).
        string[] Times(string[] lines) => [.. lines.Select(l => Regex.Match(l, "\"time\":\"([^\"]*)\"").Groups[1].Value)];
        var times = Times(a.Stored).Select(t => DateTimeOffset.Parse(t, System.Globalization.CultureInfo.InvariantCulture) - DateTimeOffset.UnixEpoch).ToArray();
        Assert.Equal(TimeSpan.Zero, times[0]);
        Assert.All(times, t => Assert.True(t.Ticks % TimeSpan.TicksPerMillisecond == 0 && t <= TimeSpan.FromMilliseconds(300), $"{t}"));
        Assert.True(times.Zip(times.Skip(1)).All(p => p.Item1 <= p.Item2), "the journal's times go back");
        Assert.True(times.Distinct().Count() > 250, $"{times.Distinct().Count()} distinct times in 300 rounds");
        static string WithoutSeq(string l) => Regex.Replace(l, "^\\{\"seq\":\\d+,", "{");
        Assert.Equal(a.Stored.Select(WithoutSeq).Order(StringComparer.Ordinal), a.AsRun.Select(WithoutSeq).Order(StringComparer.Ordinal));
    }

    /// <summary>A deterministic run resumed goes on in virtual time from its newest event: its times do not
    /// start again at the epoch.</summary>
    [Fact]
    public void A_resumed_deterministic_run_goes_on_from_its_newest_events_time()
    {
        var id = $"det-resume-{Guid.NewGuid():N}";
        var first = EndToEndTests.Actorsim("run", "--deterministic", "--seed", "3", "--rounds", "20", "--run-id", id);
        Assert.True(first.Exit == 0, first.Out + first.Err);
        var resumed = EndToEndTests.Actorsim("run", "--deterministic", "--resume", id, "--rounds", "10");
        Assert.True(resumed.Exit == 0, resumed.Out + resumed.Err);
        var file = Path.Combine(Path.GetTempPath(), $"{id}.jsonl");
        var ex = EndToEndTests.Actorsim("export", "--run", id, "-o", file);
        Assert.True(ex.Exit == 0, ex.Out + ex.Err);
        var times = File.ReadAllLines(file)[1..].Select(l => DateTimeOffset.Parse(Regex.Match(l, "\"time\":\"([^\"]*)\"").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) - DateTimeOffset.UnixEpoch).ToArray();
        File.Delete(file);
        Assert.True(times.Zip(times.Skip(1)).All(p => p.Item1 <= p.Item2), string.Join(" ", times.Select(t => t.TotalMilliseconds)));
        Assert.InRange(times[^1], TimeSpan.FromMilliseconds(21), TimeSpan.FromMilliseconds(30)); // 20 rounds, then 10 more
    }
}
