using System.Text;
using System.Text.Json;
using ActorSim.Domain.Kvm;
using ActorSim.Persistence.Serialization;

namespace ActorSim.Persistence.Tests;

/// <summary>The hand-written reader of decision records reads what the serializer writes and gives the
/// same records as the general System.Text.Json path; on any other shape it steps aside, and the
/// result (a record or an error) is the general path's.</summary>
public class DecisionRecordReaderTests
{
    /// <summary>Decisions of every kind the sample run makes (device, RAM, errors, relaxed permissions),
    /// plus decisions of a larger seeded run.</summary>
    internal static IReadOnlyList<DecisionRecord> Decisions()
    {
        var k = new Domain.Simulation.SyncKernel(Domain.Kernel.KernelPolicy.Of("6.17"));
        k.AddDevice(Domain.Vfio.DeviceLayout.Build("gpu0", Domain.Vfio.VfioDriver.VfioPci, 0, [new Domain.Vfio.RegionSpec(0, 1UL << 24, Domain.Vfio.BarType.Mem64, true)]));
        k.AddVm(KvmVm.Create("vm1"));
        k.MmapDevice("gpu0", 0, 0, 1UL << 24, true, Domain.Mm.Prot.Read | Domain.Mm.Prot.Write, null, out var bar);
        k.SetMemslot("vm1", 1, MemslotFlags.None, 0x80_0000_0000, 1UL << 24, bar);
        var made = new List<DecisionRecord?>
        {
            k.Access("vm1", 0, 0x80_0000_1000, AccessOp.Write).Decision,
            k.Access("vm1", 1, 0x80_0000_1000, AccessOp.Exec).Decision, // exec on a device: guest abort
            k.Access("vm1", 2, 0x1000, AccessOp.Read).Decision, // no memslot: MMIO exit
            k.Access("vm1", 4, 0x2000, AccessOp.Write, syndrome: AbortSyndrome.Nisv).Decision, // and without a valid syndrome: -ENOSYS
            k.Access("vm1", 5, 0x80_0060_0000, AccessOp.Write, syndrome: AbortSyndrome.Nisv).Decision, // mapped all the same (another block), "nisv" kept
            k.Access("vm1", 6, 0x3000, AccessOp.Read, syndrome: AbortSyndrome.S1ptw).Decision, // a stage-1 walk with no memslot: data abort injected
            k.Access("vm1", 7, 0x4000, AccessOp.Read, syndrome: AbortSyndrome.Cm | AbortSyndrome.Nisv).Decision, // cache maintenance, no memslot: skipped
            k.Access("vm1", 0, 0x80_00a0_0000, AccessOp.Exec, syndrome: AbortSyndrome.S1ptw).Decision, // an instruction fetch's walk: no exec fault, mapped
            k.Access("vm1", 1, 0x80_00c0_0000, AccessOp.Read, syndrome: AbortSyndrome.S1ptw | AbortSyndrome.Cm).Decision, // both bits, mapped
        };
        // vm2's VMM enabled KVM_CAP_ARM_NISV_TO_USER: every decision carries it, the one without a syndrome exits.
        k.AddVm(KvmVm.Create("vm2", nisvToUser: true));
        made.Add(k.Access("vm2", 0, 0x2000, AccessOp.Write, syndrome: AbortSyndrome.Nisv).Decision); // KVM_EXIT_ARM_NISV
        made.Add(k.Access("vm2", 0, 0x3000, AccessOp.Read, syndrome: AbortSyndrome.S1ptw | AbortSyndrome.Cm | AbortSyndrome.Nisv).Decision); // every bit
        k.SetDeviceMemory("gpu0", false);
        made.Add(k.Access("vm1", 3, 0x80_0000_3000, AccessOp.Read).Decision); // memory disabled: -EFAULT
        return [.. made.OfType<DecisionRecord>(), .. EventSerializationTests.SampleEvents().SelectMany(e => e is Stage2FaultResolved or Stage2FaultsResolved ? DecisionEvents.Of(e) : [])];
    }

    private static string Written(DecisionRecord d) => JsonSerializer.Serialize(d, DomainEventSerializer.General);

    [Fact]
    public void The_fast_path_reads_every_written_decision_as_the_general_path_does()
    {
        var decisions = Decisions();
        Assert.True(decisions.Count >= 4);
        Assert.Contains(decisions, d => d.Inputs.Slot is null);
        Assert.Contains(decisions, d => d.Inputs.Vma is not null && d.Outcome.Leaf is null && d.Outcome.Errno != Domain.Kernel.Errno.None);
        Assert.Contains(decisions, d => d.Outcome.Leaf is not null && d.Inputs.Vma is not null);
        Assert.Contains(decisions, d => d.Inputs.ExistingLeaf is not null);
        Assert.Contains(decisions, d => d.Inputs.Nisv && d.Outcome.Errno == Domain.Kernel.Errno.ENOSYS);
        Assert.Contains(decisions, d => d.Inputs.Nisv && d.Outcome.Leaf is not null);
        Assert.Contains(decisions, d => d.Inputs is { S1ptw: true, Cm: false } && d.Outcome.Path == DecisionPath.S1ptwInjectDabt);
        Assert.Contains(decisions, d => d.Inputs is { Cm: true, S1ptw: false } && d.Outcome.Result == FaultResult.InstructionSkipped);
        Assert.Contains(decisions, d => d.Inputs is { Cm: true, S1ptw: true } && d.Outcome.Leaf is not null);
        Assert.Contains(decisions, d => d.Inputs.NisvToUser && d.Outcome.Result == FaultResult.NisvExit);
        Assert.Contains(decisions, d => d.Inputs is { NisvToUser: true, Nisv: true, S1ptw: true, Cm: true });
        foreach (var d in decisions)
        {
            var json = Written(d);
            Assert.True(DecisionRecordConverter.TryReadWritten(Encoding.UTF8.GetBytes(json), out var fast), json);
            var general = JsonSerializer.Deserialize<DecisionRecord>(json, DomainEventSerializer.General)!;
            Assert.Equal(general.Inputs, fast!.Inputs);
            Assert.Equal(general.Outcome, fast.Outcome);
            Assert.Equal(d.Inputs, fast.Inputs);
            Assert.Equal(json, Written(fast));
            // The template matcher (no tokenizer) takes the written bytes too, to the same record.
            Assert.True(DecisionRecordConverter.TryMatchWritten(Encoding.UTF8.GetBytes(json), out var matched), json);
            Assert.Equal(d.Inputs, matched!.Inputs);
            Assert.Equal(d.Outcome, matched.Outcome);
        }
    }

    /// <summary>"nisv" came after runs were recorded: it is written only when set, so a record without it
    /// (every one written before) is a plain access on every path — the template, the reader in written
    /// and jsonb order, and the general path — and so is one with it false; anything but a boolean is
    /// refused, as for any other field.</summary>
    [Fact]
    public void Nisv_is_written_only_when_set_and_read_as_false_when_missing()
    {
        var d = Decisions().First(x => x.Inputs.Nisv && x.Outcome.Errno == Domain.Kernel.Errno.ENOSYS);
        Assert.EndsWith("\"memcacheTopUpFails\":false,\"nisv\":true}", Written(d)[..Written(d).IndexOf(",\"outcome\"", StringComparison.Ordinal)]);
        var plain = Written(d with { Inputs = d.Inputs with { Nisv = false } });
        Assert.DoesNotContain("nisv", plain);
        var explicitFalse = plain.Replace("\"memcacheTopUpFails\":false}", "\"memcacheTopUpFails\":false,\"nisv\":false}");
        Assert.NotEqual(plain, explicitFalse);
        foreach (var json in new[] { plain, explicitFalse, AsJsonbText(plain), AsJsonbText(explicitFalse), AsJsonbText(Written(d)) })
        {
            var general = JsonSerializer.Deserialize<DecisionRecord>(json, DomainEventSerializer.General)!;
            var read = JsonSerializer.Deserialize<DecisionRecord>(json, DomainEventSerializer.Options)!;
            Assert.Equal(json.Contains("\"nisv\": true") || json.Contains("\"nisv\":true"), general.Inputs.Nisv);
            Assert.Equal(general, read);
            Assert.True(DecisionRecordConverter.TryReadWritten(Encoding.UTF8.GetBytes(json), out var fast), json);
            Assert.Equal(general, fast);
        }
        Assert.True(DecisionRecordConverter.TryMatchWritten(Encoding.UTF8.GetBytes(plain), out var matched));
        Assert.False(matched!.Inputs.Nisv);
        Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<DecisionRecord>(Written(d).Replace("\"nisv\":true", "\"nisv\":1"), DomainEventSerializer.Options));
    }

    /// <summary>"s1ptw" and "cm" came after "nisv" and are written as it is: only when set, after it, in
    /// that order; a record without them reads as it did on every path.</summary>
    [Fact]
    public void S1ptw_and_cm_are_written_only_when_set_and_read_as_false_when_missing()
    {
        var d = Decisions().First(x => x.Inputs is { S1ptw: true, Cm: true });
        Assert.EndsWith("\"memcacheTopUpFails\":false,\"s1ptw\":true,\"cm\":true}", Written(d)[..Written(d).IndexOf(",\"outcome\"", StringComparison.Ordinal)]);
        var all = d with { Inputs = d.Inputs with { Nisv = true } };
        Assert.Contains("\"nisv\":true,\"s1ptw\":true,\"cm\":true}", Written(all));
        foreach (var variant in new[] { all, d, d with { Inputs = d.Inputs with { Cm = false } }, d with { Inputs = d.Inputs with { S1ptw = false, Cm = false } } })
        {
            var json = Written(variant);
            Assert.Equal(variant.Inputs.S1ptw, json.Contains("\"s1ptw\":true", StringComparison.Ordinal));
            Assert.Equal(variant.Inputs.Cm, json.Contains("\"cm\":true", StringComparison.Ordinal));
            foreach (var text in new[] { json, AsJsonbText(json) })
            {
                Assert.Equal(variant, JsonSerializer.Deserialize<DecisionRecord>(text, DomainEventSerializer.General));
                Assert.Equal(variant, JsonSerializer.Deserialize<DecisionRecord>(text, DomainEventSerializer.Options));
                Assert.True(DecisionRecordConverter.TryReadWritten(Encoding.UTF8.GetBytes(text), out var fast), text);
                Assert.Equal(variant, fast);
            }
            Assert.True(DecisionRecordConverter.TryMatchWritten(Encoding.UTF8.GetBytes(json), out var matched));
            Assert.Equal(variant, matched);
        }
        Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<DecisionRecord>(Written(d).Replace("\"cm\":true", "\"cm\":\"yes\""), DomainEventSerializer.Options));
    }

    /// <summary>"nisvToUser" (the VM's KVM_CAP_ARM_NISV_TO_USER) came after "cm" and is written as it is: only
    /// when set, last; a record without it reads as it did on every path, and anything but a boolean is
    /// refused.</summary>
    [Fact]
    public void NisvToUser_is_written_only_when_set_last_and_read_as_false_when_missing()
    {
        var d = Decisions().First(x => x.Outcome.Result == FaultResult.NisvExit);
        Assert.EndsWith("\"memcacheTopUpFails\":false,\"nisv\":true,\"nisvToUser\":true}", Written(d)[..Written(d).IndexOf(",\"outcome\"", StringComparison.Ordinal)]);
        var all = Decisions().First(x => x.Inputs is { NisvToUser: true, S1ptw: true });
        Assert.Contains("\"nisv\":true,\"s1ptw\":true,\"cm\":true,\"nisvToUser\":true}", Written(all));
        var without = d with { Inputs = d.Inputs with { NisvToUser = false } };
        Assert.DoesNotContain("nisvToUser", Written(without));
        var explicitFalse = Written(without).Replace("\"nisv\":true}", "\"nisv\":true,\"nisvToUser\":false}");
        foreach (var (variant, json) in new[] { (d, Written(d)), (all, Written(all)), (without, Written(without)), (without, explicitFalse) })
        {
            foreach (var text in new[] { json, AsJsonbText(json) })
            {
                Assert.Equal(variant, JsonSerializer.Deserialize<DecisionRecord>(text, DomainEventSerializer.General));
                Assert.Equal(variant, JsonSerializer.Deserialize<DecisionRecord>(text, DomainEventSerializer.Options));
                Assert.True(DecisionRecordConverter.TryReadWritten(Encoding.UTF8.GetBytes(text), out var fast), text);
                Assert.Equal(variant, fast);
            }
        }
        Assert.True(DecisionRecordConverter.TryMatchWritten(Encoding.UTF8.GetBytes(Written(without)), out var matched));
        Assert.Equal(without, matched);
        Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<DecisionRecord>(Written(d).Replace("\"nisvToUser\":true", "\"nisvToUser\":1"), DomainEventSerializer.Options));
    }

    /// <summary>Records the runs do not make: odd names, values without an enum name, unknown VM flag
    /// bits, several prot flags, extreme numbers.</summary>
    internal static IEnumerable<DecisionRecord> OddDecisions()
    {
        var d = Decisions().First(x => x.Inputs.Vma is not null && x.Inputs.Slot is not null && x.Outcome.Leaf is not null);
        var vma = d.Inputs.Vma!.Value;
        yield return d with { Inputs = d.Inputs with { Vm = "vm \"é\" <1>", Vcpu = -1, Gpa = ulong.MaxValue, Hva = 0, InProgressAtLock = int.MinValue } };
        yield return d with { Inputs = d.Inputs with { Op = (AccessOp)7, Vma = vma with { Flags = vma.Flags | (Domain.Kernel.VmFlags)(1UL << 62), S1 = (Domain.Kernel.MairIndex)9 },
            Slot = d.Inputs.Slot! with { Flags = MemslotFlags.KVM_MEM_READONLY | MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES | (MemslotFlags)64 } } };
        yield return d with { Outcome = d.Outcome with { Errno = (Domain.Kernel.Errno)1234, Prot = (Domain.Stage2.KvmPgtableProt)ulong.MaxValue, Path = (DecisionPath)200 } };
        yield return d with { Inputs = d.Inputs with { Policy = new Domain.Kernel.KernelPolicy(Domain.Kernel.RuleSet.V6_8, new(false, true), Domain.Kernel.WordSize.Bits32), Vma = vma with { Flags = Domain.Kernel.VmFlags.VM_NONE } } };
    }

    /// <summary>Seeded edits of written records (a byte replaced, removed or added): whatever the
    /// template matcher accepts, the general path reads as the same record.</summary>
    [Fact]
    public void The_template_matcher_accepts_nothing_the_general_path_reads_otherwise()
    {
        var written = Decisions().Concat(OddDecisions()).Select(d => Encoding.UTF8.GetBytes(Written(d))).ToArray();
        var odd = "09afAFx\"\\,}] -.eEnt:{[7"u8.ToArray();
        var random = new Random(5);
        int matched = 0, tried = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var json = written[random.Next(written.Length)].ToList();
            var at = random.Next(json.Count);
            switch (random.Next(3))
            {
                case 0: json[at] = odd[random.Next(odd.Length)]; break;
                case 1: json.RemoveAt(at); break;
                default: json.Insert(at, odd[random.Next(odd.Length)]); break;
            }
            var bytes = json.ToArray();
            tried++;
            if (!DecisionRecordConverter.TryMatchWritten(bytes, out var m)) continue;
            matched++;
            DecisionRecord? general;
            try { general = JsonSerializer.Deserialize<DecisionRecord>(bytes, DomainEventSerializer.General); }
            catch (JsonException e) { throw new Xunit.Sdk.XunitException($"matched, but the general path refuses it ({e.Message}): {Encoding.UTF8.GetString(bytes)}"); }
            Assert.Equal(general!.Inputs, m!.Inputs);
            Assert.Equal(general.Outcome, m.Outcome);
        }
        // Some edits keep a valid record (a digit for a digit): the comparison above ran.
        Assert.InRange(matched, 100, tried - 1000);
    }

    [Fact]
    public void The_hand_written_writer_writes_the_bytes_of_the_general_path()
    {
        var all = Decisions().Concat(OddDecisions()).ToList();
        Assert.True(all.Count >= 8);
        foreach (var d in all)
        {
            var general = Written(d);
            Assert.Equal(general, JsonSerializer.Serialize(d, DomainEventSerializer.Options));
        }
        // And in an event, as the journal and an export write them.
        var batch = new Stage2FaultsResolved([.. all]);
        Assert.Equal(JsonSerializer.Serialize(batch, DomainEventSerializer.General), Encoding.UTF8.GetString(DomainEventSerializer.ToUtf8(batch)));
    }

    /// <summary>The JSON with every object's keys in PostgreSQL's jsonb order (shorter first, then
    /// bytewise), and a space after each colon and comma, as <c>jsonb::text</c> gives it back.</summary>
    public static string AsJsonbText(string json)
    {
        static string Out(System.Text.Json.Nodes.JsonNode? n) => n switch
        {
            System.Text.Json.Nodes.JsonObject o => "{" + string.Join(", ", o
                .OrderBy(p => Encoding.UTF8.GetByteCount(p.Key)).ThenBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => JsonSerializer.Serialize(p.Key) + ": " + Out(p.Value))) + "}",
            System.Text.Json.Nodes.JsonArray a => "[" + string.Join(", ", a.Select(Out)) + "]",
            null => "null",
            _ => n.ToJsonString(),
        };
        return Out(System.Text.Json.Nodes.JsonNode.Parse(json));
    }

    [Fact]
    public void The_fast_path_reads_fields_in_any_order_as_the_general_path_does()
    {
        foreach (var d in Decisions())
        {
            var written = Written(d);
            var json = AsJsonbText(written);
            Assert.NotEqual(written, json);
            Assert.False(DecisionRecordConverter.TryMatchWritten(Encoding.UTF8.GetBytes(json), out _), json);
            Assert.True(DecisionRecordConverter.TryReadWritten(Encoding.UTF8.GetBytes(json), out var fast), json);
            Assert.Equal(d.Inputs, fast!.Inputs);
            Assert.Equal(d.Outcome, fast.Outcome);
            Assert.Equal(written, Written(fast));
        }
        // Two fields swapped.
        var one = Written(Decisions().First(d => !d.Inputs.FaultIsPerm && d.Inputs.FaultLevel == 3));
        var swapped = one.Replace("\"faultIsPerm\":false,\"faultLevel\":3", "\"faultLevel\":3,\"faultIsPerm\":false");
        Assert.NotEqual(one, swapped);
        Assert.True(DecisionRecordConverter.TryReadWritten(Encoding.UTF8.GetBytes(swapped), out var read));
        Assert.Equal(one, Written(read!));
    }

    [Fact]
    public async Task A_decision_stored_as_jsonb_and_read_back_as_text_is_read_by_hand()
    {
        // As RunLog reads a run back from the database (replay, explain, export).
        await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        foreach (var d in Decisions())
        {
            await using var cmd = new Npgsql.NpgsqlCommand("select @j::jsonb::text", conn);
            cmd.Parameters.AddWithValue("j", Written(d));
            var text = (string)(await cmd.ExecuteScalarAsync())!;
            Assert.Equal(AsJsonbText(Written(d)), text); // the order the test above reads
            Assert.True(DecisionRecordConverter.TryReadWritten(Encoding.UTF8.GetBytes(text), out var fast), text);
            Assert.Equal(Written(d), Written(fast!));
        }
    }

    public static TheoryData<string, string> Edits => new()
    {
        // a field twice (the general path decides which counts)
        { "{\"inputs\":", "{\"outcome\":null,\"inputs\":" },
        { "\"faultLevel\":3", "\"faultLevel\":3,\"faultLevel\":2" },
        // a number where a hex string is written (the general path reads both)
        { "\"faultLevel\":3", "\"faultLevel\":\"3\"" },
        { "\"sampledSeq\":\"0x0\"", "\"sampledSeq\":0" },
        // an escape, an unknown name, an unknown field, a missing field
        { "\"op\":\"Read\"", "\"op\":\"R\\u0065ad\"" },
        { "\"op\":\"Read\"", "\"op\":\"Reed\"" },
        { "\"memcacheTopUpFails\":false", "\"memcacheTopUpFails\":false,\"extra\":1" },
        { "\"vmHasMte\":false,", "" },
        { "\"gpa\":\"0x", "\"gpa\":\"0X" },
        { "\"gpa\":\"0x", "\"gpa\":\"0x00000000000000000" },
    };

    [Theory]
    [MemberData(nameof(Edits))]
    public void Any_other_shape_reads_as_the_general_path_reads_it(string from, string to)
    {
        var written = Written(Decisions().First(d => d.Inputs.Vma is not null && d.Inputs.Op == AccessOp.Read && d.Inputs.SampledSeq == 0 && !d.Inputs.FaultIsPerm && d.Inputs.FaultLevel == 3));
        Assert.Contains(from, written);
        var json = written.Replace(from, to);
        Assert.False(DecisionRecordConverter.TryReadWritten(Encoding.UTF8.GetBytes(json), out _));
        Assert.False(DecisionRecordConverter.TryMatchWritten(Encoding.UTF8.GetBytes(json), out _));
        string Outcome(JsonSerializerOptions o)
        {
            try
            {
                var d = JsonSerializer.Deserialize<DecisionRecord>(json, o)!;
                return "ok " + JsonSerializer.Serialize(d, DomainEventSerializer.General);
            }
            catch (JsonException e)
            {
                return "error " + e.Message;
            }
        }
        Assert.Equal(Outcome(DomainEventSerializer.General), Outcome(DomainEventSerializer.Options));
    }

    /// <summary>A decision event's JSON through the serializer (fast wrapper where it applies) and
    /// through the general path alone: "ok" and the event written again, or "error" and the message.</summary>
    private static (string Serializer, string General) BothWays(string alias, string json)
    {
        var type = alias == "stage2_fault_resolved" ? typeof(Stage2FaultResolved) : typeof(Stage2FaultsResolved);
        string Of(Func<object> read)
        {
            try { return "ok " + JsonSerializer.Serialize(read(), type, DomainEventSerializer.General); }
            catch (JsonException e) { return "error " + e.Message; }
        }
        return (Of(() => DomainEventSerializer.FromUtf8(alias, DomainEventSerializer.VersionOf(alias), Encoding.UTF8.GetBytes(json))),
                Of(() => JsonSerializer.Deserialize(json, type, DomainEventSerializer.General)!));
    }

    [Fact]
    public void Decision_events_as_written_are_read_by_hand_and_as_the_general_path_reads_them()
    {
        var decisions = Decisions().ToArray();
        foreach (var e in decisions.Select(d => (Domain.IDomainEvent)new Stage2FaultResolved(d)).Append(new Stage2FaultsResolved(decisions)).Append(new Stage2FaultsResolved([])))
        {
            var alias = DomainEventSerializer.AliasOf(e.GetType());
            var json = Encoding.UTF8.GetString(DomainEventSerializer.ToUtf8(e));
            var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json));
            reader.Read();
            Assert.True(DecisionRecordConverter.TryReadEvent(alias, ref reader, out var fast), json);
            Assert.Equal(JsonTokenType.EndObject, reader.TokenType);
            Assert.False(reader.Read()); // on the event's last token
            Assert.Equal(e, fast);
            var bytes = Encoding.UTF8.GetBytes(json);
            Assert.True(DecisionRecordConverter.TryMatchEvent(alias, bytes, out var matched, out var consumed), json);
            Assert.Equal(bytes.Length, consumed);
            Assert.Equal(e, matched);
            var (serializer, general) = BothWays(alias, json);
            Assert.Equal(general, serializer);
        }
    }

    public static TheoryData<string, string, string> WrapperEdits => new()
    {
        { "stage2_fault_resolved", "{\"decision\":", "{\"Decision\":" },
        { "stage2_fault_resolved", "{\"decision\":", "{\"other\":1,\"decision\":" },
        { "stage2_fault_resolved", "}}}", "}},\"decision\":null}" },
        { "stage2_faults_resolved", "{\"decisions\":[", "{\"decisions\":null,\"x\":[" },
        { "stage2_faults_resolved", "]}", "],\"extra\":true}" },
        { "stage2_faults_resolved", "{\"decisions\":[", "{\"decisions\":[null," },
    };

    [Theory]
    [MemberData(nameof(WrapperEdits))]
    public void A_decision_event_of_another_shape_reads_as_the_general_path_reads_it(string alias, string from, string to)
    {
        var d = Decisions().First(d => d.Outcome.Leaf is not null);
        Domain.IDomainEvent e = alias == "stage2_fault_resolved" ? new Stage2FaultResolved(d) : new Stage2FaultsResolved([d, d]);
        var written = Encoding.UTF8.GetString(DomainEventSerializer.ToUtf8(e));
        Assert.Contains(from, written);
        var json = written.Replace(from, to);
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json));
        reader.Read();
        Assert.False(DecisionRecordConverter.TryReadEvent(alias, ref reader, out _), json);
        var bytes = Encoding.UTF8.GetBytes(json);
        Assert.False(DecisionRecordConverter.TryMatchEvent(alias, bytes, out _, out var consumed) && consumed == bytes.Length, json);
        var (serializer, general) = BothWays(alias, json);
        Assert.Equal(general, serializer);
    }
}
