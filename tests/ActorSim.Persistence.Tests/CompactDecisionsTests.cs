using ActorSim.Domain;
using ActorSim.Domain.Kvm;
using ActorSim.Persistence.Journal;
using ActorSim.Persistence.Serialization;

namespace ActorSim.Persistence.Tests;

/// <summary>The journal stores decision events compact (<see cref="CompactDecisions"/>): every record
/// comes back equal, with the JSON it had, far smaller; a damaged record is refused, never misread.</summary>
public class CompactDecisionsTests
{
    private static List<DecisionRecord> All() => [.. DecisionRecordReaderTests.Decisions(), .. DecisionRecordReaderTests.OddDecisions()];

    private static IEnumerable<IDomainEvent> Events()
    {
        var all = All();
        foreach (var d in all) yield return new Stage2FaultResolved(d);
        yield return new Stage2FaultsResolved([.. all]);
        yield return new Stage2FaultsResolved([all[0]]); // a batch of one stays a batch
        yield return new Stage2FaultsResolved([]);
        yield return PackedEventTests.LargeBatch();
    }

    [Fact]
    public void Every_decision_event_comes_back_equal_and_writes_the_same_json()
    {
        var all = All();
        Assert.Contains(all, d => d.Inputs.Slot is null);
        Assert.Contains(all, d => d.Inputs.ExistingLeaf is not null);
        Assert.Contains(all, d => d.Inputs.Vcpu < 0 && d.Inputs.InProgressAtLock == int.MinValue);
        Assert.Contains(all, d => d.Outcome.Prot == (Domain.Stage2.KvmPgtableProt)ulong.MaxValue);
        foreach (var e in Events())
        {
            var back = CompactDecisions.Read(CompactDecisions.Write(e));
            Assert.Equal(e.GetType(), back.GetType());
            Assert.Equal(DecisionEvents.Of(e), DecisionEvents.Of(back));
            Assert.Equal(DomainEventSerializer.ToUtf8(e), DomainEventSerializer.ToUtf8(back));
        }
    }

    [Fact]
    public void A_record_is_a_fraction_of_its_json_and_a_batch_shares_what_its_records_repeat()
    {
        var one = new Stage2FaultResolved(DecisionRecordReaderTests.Decisions().First(d => d.Inputs.Slot is not null && d.Inputs.Vma is not null));
        var compact = CompactDecisions.Write(one).Length;
        Assert.True(compact * 6 < DomainEventSerializer.ToUtf8(one).Length, $"{compact} of {DomainEventSerializer.ToUtf8(one).Length}");
        // A batch of that VM's faults on other pages, as a fault batch is: the memslot, VMA, policy and
        // VM name are written once.
        var batch = new Stage2FaultsResolved([.. Enumerable.Range(0, 24).Select(i => one.Decision with { Inputs = one.Decision.Inputs with { Gpa = one.Decision.Inputs.Gpa + ((ulong)i << 12), Vcpu = i % 8 } })]);
        var perRecord = (double)CompactDecisions.Write(batch).Length / batch.Decisions.Length;
        Assert.True(perRecord < compact * 0.6, $"{perRecord:F0} B a record in a batch, {compact} alone");
    }

    /// <summary>The bytes of one record, pinned: enum values and field order are part of the stored
    /// format, so renumbering an enum or moving a field fails here, not in a database.</summary>
    [Fact]
    public void The_format_is_pinned()
    {
        var d = new DecisionRecord(
            new FaultInputs("vm1", 2, 0x4000_1000, AccessOp.Write, false, 3,
                new Memslot(1, 0x4000_0000, 0x1000_0000, 0x7f00_0000_0000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES),
                0x7f00_0000_1000, new Domain.Mm.VmaSnapshot(0x7f00_0000_0000, 0x7f00_1000_0000, Domain.Kernel.VmFlags.VM_READ | Domain.Kernel.VmFlags.VM_ALLOW_ANY_UNCACHED, 0x10, Domain.Kernel.MairIndex.MT_NORMAL_NC),
                0x7f00_0000_1000, new Domain.Mm.PfnLookup(Domain.Mm.PfnStatus.Ok, 0x80001, false, true),
                Domain.Kernel.KernelPolicy.Of("6.17"), false, 40, 5, 6, 0, null),
            new FaultOutcome(FaultResult.Mapped, Domain.Kernel.Errno.None,
                new Stage2Leaf(0x4000_1000, 3, Domain.Stage2.KvmPgtableProt.KVM_PGTABLE_PROT_R | Domain.Stage2.KvmPgtableProt.KVM_PGTABLE_PROT_W, 0x4c7),
                Domain.Stage2.KvmPgtableProt.KVM_PGTABLE_PROT_R | Domain.Stage2.KvmPgtableProt.KVM_PGTABLE_PROT_W, DecisionPath.MapLeaf));
        var bytes = CompactDecisions.Write(new Stage2FaultResolved(d));
        Assert.Equal(PinnedHex, Convert.ToHexString(bytes));
        Assert.Equal(d, ((Stage2FaultResolved)CompactDecisions.Read(bytes)).Decision);
        // nisv is the second flag byte's top bit (0x71 -> 0xF1); nothing else moves.
        var nisv = d with { Inputs = d.Inputs with { Nisv = true } };
        var nisvBytes = CompactDecisions.Write(new Stage2FaultResolved(nisv));
        Assert.Equal(PinnedHex[..8] + "F1" + PinnedHex[10..], Convert.ToHexString(nisvBytes));
        Assert.Equal(nisv, ((Stage2FaultResolved)CompactDecisions.Read(nisvBytes)).Decision);
        // s1ptw and cm are the op's number's bits 8 and 9: op 1 (one byte, 01) becomes 0x101 (81 02), 0x201
        // (81 04), 0x301 (81 06); the VM's KVM_CAP_ARM_NISV_TO_USER is bit 10, 0x401 (81 08); nothing else
        // moves. Bit 11 is none of them: refused.
        foreach (var (s1ptw, cm, nisvToUser, hex) in new[] { (true, false, false, "8102"), (false, true, false, "8104"), (true, true, false, "8106"),
            (false, false, true, "8108"), (true, true, true, "810E") })
        {
            var bits = d with { Inputs = d.Inputs with { S1ptw = s1ptw, Cm = cm, NisvToUser = nisvToUser } };
            var bitsBytes = CompactDecisions.Write(new Stage2FaultResolved(bits));
            Assert.Equal(PinnedHex[..30] + hex + PinnedHex[32..], Convert.ToHexString(bitsBytes));
            Assert.Equal(bits, ((Stage2FaultResolved)CompactDecisions.Read(bitsBytes)).Decision);
        }
        Assert.Contains("is no op with its syndrome and VM bits", Assert.Throws<InvalidDataException>(() =>
            CompactDecisions.Read(Convert.FromHexString(PinnedHex[..30] + "8110" + PinnedHex[32..]))).Message);
    }

    private const string PinnedHex =
        "0100010A7103766D310480A0808004010602808080800480808080018080808080E01F0180A0808080E01F8080808080E01F8080808081E01F818080808010100280A0808080E01F0081802004800150050600000080A08080040606C7090611";

    [Fact]
    public void A_damaged_record_is_refused()
    {
        var batch = CompactDecisions.Write(new Stage2FaultsResolved([.. All()]));
        Assert.Contains("cut short", Assert.Throws<InvalidDataException>(() => CompactDecisions.Read(batch[..^1])).Message);
        Assert.Contains("after its records", Assert.Throws<InvalidDataException>(() => CompactDecisions.Read([.. batch, 0])).Message);
        Assert.Contains("unknown version 9", Assert.Throws<InvalidDataException>(() => CompactDecisions.Read([9, .. batch[1..]])).Message);
        Assert.Contains("unknown kind 7", Assert.Throws<InvalidDataException>(() => CompactDecisions.Read([batch[0], 7, .. batch[2..]])).Message);
        var single = CompactDecisions.Write(new Stage2FaultResolved(All()[0]));
        Assert.Contains("refers to a record before it", Assert.Throws<InvalidDataException>(() => CompactDecisions.Read([.. single[..3], (byte)(single[3] | 4), .. single[4..]])).Message);
        // Every cut of a batch is refused, never read as something shorter.
        for (var n = 0; n < batch.Length; n++) Assert.Throws<InvalidDataException>(() => CompactDecisions.Read(batch[..n]));
    }

    [Fact]
    public void A_journal_entry_holds_a_decision_event_compact_and_any_other_as_json()
    {
        var single = new Stage2FaultResolved(All()[0]);
        var entry = JournalEntry.ForEvent(single, "w");
        var bytes = JournalEntryBinary.Write(entry);
        Assert.Equal(JournalEntryBinary.CompactFormat, bytes[0]);
        Assert.True(bytes.Length * 4 < DomainEventSerializer.ToUtf8(single).Length, $"{bytes.Length}");
        var back = JournalEntryBinary.Read(bytes);
        Assert.Equal(Packing.Compact, back.Data!.Packing);
        Assert.Equal(single, back.Data.Decode(entry.Type!, entry.SchemaVersion));
        Assert.Equal(DomainEventSerializer.ToUtf8(single), back.Data.Utf8); // its JSON, made again
        Assert.Equal(DomainEventSerializer.ToJson(single).GetRawText(), back.Data.Element.GetRawText());
        var view = JournalEntryBinary.View(bytes);
        Assert.Equal(single, view.Event());
        Assert.Equal(DomainEventSerializer.ToUtf8(single), view.Json.ToArray());
        // A compact record under another type, or at another schema version, is refused.
        Assert.Contains("under the type", Assert.Throws<InvalidDataException>(() => back.Data.Decode("stage2_faults_resolved", entry.SchemaVersion)).Message);
        Assert.Contains("schema version", Assert.Throws<InvalidDataException>(() => back.Data.Decode(entry.Type!, entry.SchemaVersion + 1)).Message);
        // Format and flag go together: compact data in a format 2 record, or format 3 without it, is refused.
        Assert.Contains("compact data", Assert.Throws<InvalidDataException>(() => JournalEntryBinary.Read([JournalEntryBinary.Format, .. bytes[1..]])).Message);
        var other = JournalEntryBinary.Write(JournalEntry.ForEvent(new MmuInvalidateBegan("vm1", 0x1000, 0x2000), "w"));
        Assert.Equal(JournalEntryBinary.Format, other[0]);
        Assert.Contains("compact data", Assert.Throws<InvalidDataException>(() => JournalEntryBinary.Read([JournalEntryBinary.CompactFormat, .. other[1..]])).Message);
        // In a JSON entry (what earlier builds stored), a compact event goes in as its JSON.
        var json = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(entry);
        Assert.Equal(single, System.Text.Json.JsonSerializer.Deserialize<JournalEntry>(json)!.Data!.Decode(entry.Type!, entry.SchemaVersion));
    }

    /// <summary>Akka's serialization of domain events (snapshots' states, a journal on Akka's
    /// serialization such as the bench's peer): a decision event goes compact under its own manifest;
    /// other events, and decision events written as JSON before, read as before.</summary>
    [Fact]
    public void Akka_serialization_writes_decision_events_compact_and_reads_the_json_ones_of_before()
    {
        var single = new Stage2FaultResolved(All()[0]);
        var (manifest, bytes) = DomainEventSerializer.ToBinary(single);
        Assert.EndsWith(DomainEventSerializer.CompactManifest, manifest);
        Assert.Equal(CompactDecisions.Write(single), bytes);
        Assert.Equal(single, DomainEventSerializer.FromBinary(manifest, bytes));
        var json = DomainEventSerializer.ToUtf8(single);
        Assert.Equal(single, DomainEventSerializer.FromBinary(manifest[..^DomainEventSerializer.CompactManifest.Length], json));
        var other = new MmuInvalidateBegan("vm1", 0x1000, 0x2000);
        var (otherManifest, otherBytes) = DomainEventSerializer.ToBinary(other);
        Assert.DoesNotContain("#", otherManifest);
        Assert.Equal(other, DomainEventSerializer.FromBinary(otherManifest, otherBytes));
    }
}
