using System.Globalization;
using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Stage2;
using ActorSim.Persistence;
using ActorSim.Persistence.EventLog;

namespace ActorSim.Host.Commands;

/// <summary><c>actorsim explain --run ID --vm NAME --gpa ADDR</c>: the chain of events that gave a
/// guest page its current stage-2 memory type.</summary>
public static class ExplainCommand
{
    public static async Task<int> Execute(string[] args)
    {
        var a = Args.Parse("explain", args, ["--json"], ["--db", "--run", "--vm", "--gpa", "--file"]);
        var vm = a.Get("--vm") ?? throw new UsageException("explain: --vm NAME is required");
        var gpaText = a.Get("--gpa") ?? throw new UsageException("explain: --gpa ADDR is required");
        if (!TryAddress(gpaText, out var gpa)) throw new UsageException($"explain: --gpa '{gpaText}' is not an address");
        // One pass over the run, as it is read: the explainer keeps the fold's state and what concerns
        // the page, not the run (it held every event: 440 MB for 534 k).
        var explainer = new Explainer(vm, gpa);
        string run;
        Marten.DocumentStore? store = null;
        if (a.Get("--file") is { } file)
        {
            // Opened as replay --file opens it (a directory or an empty path ended unhandled, exit 134).
            using var log = DataCommands.OpenLog("explain", file);
            if (log is null) return 2;
            run = log.Header.Run;
            try
            {
                foreach (var e in new TerminalProgress($"reading {file}", log.Header.Events).Over(log.Events)) explainer.Add(e);
            }
            catch (EventLogFormatException e) { Console.Error.WriteLine($"actorsim explain: {Printable.Of(e.Message)}"); return 2; }
        }
        else
        {
            run = a.Get("--run") ?? throw new UsageException("explain: --run ID (or --file FILE) is required");
            var db = Database.Required("explain", a.Get("--db"));
            if (!await Database.ReachableAsync(db)) return 3;
            store = MartenStores.Get(db.ConnectionString);
            await foreach (var e in new TerminalProgress($"reading run {run}").OverAsync(RunLog.ReadAsync(store, run))) explainer.Add(e);
        }
        if (explainer.Events == 0)
        {
            if (store is not null) return await DataCommands.NoEvents("explain", store, run);
            Console.Error.WriteLine($"actorsim explain: {a.Get("--file")} has no events");
            return 2;
        }
        if (!explainer.Vms.Contains(vm))
        {
            Console.Error.WriteLine($"actorsim explain: --vm: run '{run}' has no VM '{vm}' (its VMs: {(explainer.Vms.Count == 0 ? "none" : string.Join(", ", explainer.Vms))})");
            return 2;
        }
        if (a.Has("--json")) Console.WriteLine(explainer.Json(run));
        else foreach (var line in explainer.Lines()) Console.WriteLine(line);
        return 0;
    }

    private static bool TryAddress(string s, out ulong v) =>
        s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v)
            : ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);

    /// <summary>The explanation of a page in a run given whole (tests, small runs).</summary>
    public static IEnumerable<string> Explain(IEnumerable<RunEvent> events, string vm, ulong gpa)
    {
        var x = new Explainer(vm, gpa);
        foreach (var e in events) x.Add(e);
        return x.Lines();
    }

    /// <summary>An access as explain and replay name it: the op, then its syndrome bits in brackets —
    /// "stage-1 walk" (FaultInputs.S1ptw), "cache maintenance" (Cm), "no valid syndrome" (Nisv).</summary>
    internal static string AccessText(string op, AbortSyndrome s)
    {
        string[] bits = [.. new[] { (AbortSyndrome.S1ptw, "stage-1 walk"), (AbortSyndrome.Cm, "cache maintenance"), (AbortSyndrome.Nisv, "no valid syndrome") }
            .Where(b => (s & b.Item1) != 0).Select(b => b.Item2)];
        return bits.Length == 0 ? op : $"{op} ({string.Join(", ", bits)})";
    }

    /// <summary>Reads a run once, in global order (<see cref="Add"/>), and keeps only what the page's
    /// explanation needs: the fold of every stream (<see cref="Replay"/>), the decisions about the page,
    /// its VM's memslot changes, the mm's mmaps, the page's invalidations with what caused each, and the
    /// last MMU notifier of each hva range.</summary>
    public sealed class Explainer(string vm, ulong gpa)
    {
        private readonly ulong _page = gpa & ~0xFFFUL;
        private readonly Replay _replay = new();
        private readonly SortedSet<string> _vms = new(StringComparer.Ordinal);
        private readonly List<(long Seq, DecisionRecord Decision)> _decisions = [];
        private readonly List<(long Seq, int Slot)> _memslotSets = [];
        private readonly List<(long Seq, VmaMapped Mapped)> _mmaps = [];
        private readonly List<Invalidation> _invalidations = [];
        // Each stream's last event that is not an unmapped range: KVM's invalidate_range_start writes
        // MmuInvalidateBegan and then the ranges it unmapped, one event batch
        // (KvmVmDecider.InvalidateRangeStart); a memslot change writes the ranges alone.
        private readonly Dictionary<string, IDomainEvent> _lastNotUnmapped = new(StringComparer.Ordinal);
        // The mm's notifier of each hva range, the latest so far, and the page's invalidations still
        // waiting to see whether a later one of their range is nearer.
        private readonly Dictionary<(ulong, ulong), (long Seq, MmuNotifierInvalidateRangeStart Event)> _lastNotifier = [];
        private readonly Dictionary<(ulong, ulong), List<Invalidation>> _waitingForNext = [];
        // KVM's own mappings of the page (kvm_phys_addr_ioremap), which no decision made.
        private readonly List<(long Seq, Stage2DeviceIoremapped Event)> _ioremaps = [];

        private sealed class Invalidation(long seq, Stage2RangeUnmapped unmapped, MmuInvalidateBegan? began)
        {
            public readonly long Seq = seq;
            public readonly Stage2RangeUnmapped Unmapped = unmapped;
            public readonly MmuInvalidateBegan? Began = began;
            public (long Seq, MmuNotifierInvalidateRangeStart Event)? Before, After;
        }

        public long Events { get; private set; }
        public IReadOnlyCollection<string> Vms => _vms;

        public void Add(RunEvent e)
        {
            Events++;
            _replay.Apply(e.Seq, e.Stream, e.Event);
            // A VM's events are its KvmActor's stream (SimHost.VmStream: "kvm-NAME" within the run).
            if (e.Stream.StartsWith(EventStreams.Kvm, StringComparison.Ordinal)) _vms.Add(e.Stream[EventStreams.Kvm.Length..]);
            foreach (var d in DecisionEvents.Of(e.Event))
                if (d.Inputs.Vm == vm && ((d.Inputs.Gpa & ~0xFFFUL) == _page || d.Outcome.Leaf is { } l && l.Contains(gpa)))
                    _decisions.Add((e.Seq, d));
            switch (e.Event)
            {
                case MemslotSet m when m.Vm == vm:
                    _memslotSets.Add((e.Seq, m.Slot.Id));
                    break;
                case VmaMapped m:
                    _mmaps.Add((e.Seq, m));
                    break;
                case Stage2DeviceIoremapped r when r.Vm == vm && r.Gpa <= gpa && gpa < r.End:
                    _ioremaps.Add((e.Seq, r));
                    break;
                case MmuNotifierInvalidateRangeStart n:
                    var key = (n.Start, n.End);
                    _lastNotifier[key] = (e.Seq, n);
                    if (_waitingForNext.Remove(key, out var waiting))
                        foreach (var w in waiting) w.After = (e.Seq, n);
                    break;
                case Stage2RangeUnmapped u when u.Vm == vm && u.Gpa <= gpa && gpa < u.End:
                    var inv = new Invalidation(e.Seq, u, _lastNotUnmapped.GetValueOrDefault(e.Stream) as MmuInvalidateBegan);
                    _invalidations.Add(inv);
                    if (inv.Began is { } b)
                    {
                        var range = (b.HvaStart, b.HvaEnd);
                        if (_lastNotifier.TryGetValue(range, out var before)) inv.Before = before;
                        if (!_waitingForNext.TryGetValue(range, out var list)) _waitingForNext[range] = list = [];
                        list.Add(inv);
                    }
                    break;
            }
            if (e.Event is not Stage2RangeUnmapped) _lastNotUnmapped[e.Stream] = e.Event;
        }

        /// <summary>What the run says of the page: <see cref="Explanation"/>, rendered as text by
        /// <see cref="Lines"/> and as JSON by <see cref="Json"/>.</summary>
        public Explanation Explain()
        {
            var leaf = _replay.Vms.TryGetValue(vm, out var state) ? state.Stage2.Lookup(gpa) : null;
            var lastFound = _decisions.LastOrDefault(x => x.Decision.Outcome.Leaf is not null);
            var last = lastFound.Decision is null ? (long?)null : lastFound.Seq;
            ExplainedLeaf? now = null;
            if (leaf is { } l)
            {
                var fwb = last is null || lastFound.Decision!.Inputs.Policy.Cpu.Fwb;
                now = new ExplainedLeaf(MemAttr.TypeOf(l.MemAttr, fwb) is { } t ? MemAttr.MemTypeOf(t).Name() : "?", l.MemAttr, l.Level, l.Gpa, l.Pfn, l.Writable, l.Executable);
            }
            ExplainedMemslot? memslot = null;
            ExplainedMapping? mapping = null;
            ExplainedFault? fault = null;
            if (last is { } lastSeq)
            {
                var d = lastFound.Decision!;
                var i = d.Inputs;
                if (i.Slot is { } slot)
                {
                    var set = _memslotSets.LastOrDefault(x => x.Seq < lastSeq && x.Slot == slot.Id);
                    memslot = new ExplainedMemslot(slot.Id, slot.BaseGpa, slot.EndGpa, slot.UserspaceAddr, slot.Flags.ToString(), set.Seq == 0 ? null : set.Seq);
                }
                if (i.Vma is { } vma)
                {
                    var mapped = _mmaps.LastOrDefault(x => x.Seq < lastSeq && x.Mapped.Vma.Contains(i.Hva));
                    var backing = mapped.Mapped?.Vma.Backing;
                    mapping = new ExplainedMapping(vma.Start, vma.End, vma.PgOff, vma.S1.ToString(), [.. VmFlagBits.Names(vma.Flags)],
                        mapped.Mapped is null ? null : mapped.Seq, mapped.Mapped is null ? null : backing?.Device, mapped.Mapped is null || backing?.Device is null ? null : backing.Region);
                }
                var why = i.Vma is { } v && !i.Pfn.IsMapMemory
                    ? i.Policy.RuleSet == RuleSet.V6_8 ? "6.8 has no VM_ALLOW_ANY_UNCACHED: device memory is Device-nGnRE"
                    : i.Policy.RuleSet == RuleSet.V6_17 && v.S1.IsCacheable() ? "6.17: the VMA's stage-1 type is cacheable, so the PFNMAP maps Normal (FWB+DIC)"
                    : v.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED) ? "the VMA has VM_ALLOW_ANY_UNCACHED: device memory maps Normal-NC"
                    : "the VMA lacks VM_ALLOW_ANY_UNCACHED: device memory stays Device-nGnRE"
                    : "RAM maps Normal write-back";
                fault = new ExplainedFault(lastSeq, i.Vcpu, i.Op.ToString().ToLowerInvariant(), i.Nisv, i.S1ptw, i.Cm, i.Gpa, i.Hva, i.Policy.ToString(), i.Pfn.Pfn, i.Pfn.IsMapMemory, i.Pfn.Writable,
                    i.SampledSeq, i.SeqAtLock, d.Outcome.Result.ToString(), d.Outcome.Path.ToString(), d.Outcome.Prot.ToString(), why);
            }
            // The page's other faults and its invalidations, in the order they happened, each placed
            // against the fault above (before it, or since).
            var history = _decisions.Where(x => !ReferenceEquals(x.Decision, lastFound.Decision))
                .Select(x => (x.Seq, Kind: "fault", Text: $"fault: vcpu {x.Decision.Inputs.Vcpu} {AccessText(x.Decision.Inputs.Op.ToString().ToLowerInvariant(), KvmEmulate.Syndrome(x.Decision.Inputs))} -> {x.Decision.Outcome}"))
                .Concat(_invalidations.Select(x => (x.Seq, Kind: "invalidation", Text: $"invalidation: stage-2 0x{x.Unmapped.Gpa:x}..0x{x.Unmapped.End:x} unmapped ({CauseOf(x)})")))
                .Concat(_ioremaps.Select(x => (x.Seq, Kind: "ioremap", Text: $"ioremap: KVM mapped 0x{x.Event.Gpa:x}..0x{x.Event.End:x} to device memory at 0x{x.Event.Pa:x} itself (kvm_phys_addr_ioremap: Device, no VMA, no memslot)")))
                .OrderBy(x => x.Seq)
                .Select(x => new ExplainedEvent(x.Seq, last is null ? null : x.Seq < last ? "before" : "since", x.Kind, x.Text)).ToArray();
            return new Explanation(vm, gpa, Events, now, memslot, mapping, fault, history);
        }

        public IEnumerable<string> Lines()
        {
            var x = Explain();
            yield return $"explain {vm} gpa 0x{gpa:x} ({Events} events)";
            if (x.Now is { } now)
                yield return $"now: {now.MemType} (MemAttr 0x{now.MemAttr:x}), L{now.Level} leaf at gpa 0x{now.Gpa:x} -> pfn 0x{now.Pfn:x}, {(now.Writable ? "writable" : "read-only")}, {(now.Executable ? "executable" : "XN")}";
            else yield return "now: unmapped at stage 2";
            if (x.Fault is not { } f)
            {
                yield return x.History.LastOrDefault(h => h.Kind == "ioremap") is { } io
                    ? $"no decision mapped this page: KVM mapped it itself at seq {io.Seq} (kvm_phys_addr_ioremap)"
                    : "no decision mapped this page";
            }
            else
            {
                if (x.Memslot is { } m)
                    yield return $"memslot: slot {m.Slot} gpa 0x{m.Gpa:x}..0x{m.End:x} -> hva 0x{m.Hva:x}, flags {m.Flags}" + (m.SetAtSeq is { } set ? $" (set at seq {set})" : "");
                if (x.Mapping is { } v)
                    yield return $"mapping: VMA 0x{v.Start:x}..0x{v.End:x} pgoff 0x{v.PgOff:x} stage-1 {v.Stage1} flags {string.Join(" ", v.Flags)}" +
                                 (v.MmapSeq is { } ms ? $" (mmap at seq {ms}{(v.Device is { } dev ? $", {dev} region {v.Region}" : ", anonymous memory")})" : "");
                yield return $"fault: seq {f.Seq} vcpu {f.Vcpu} {AccessText(f.Op, f.Syndrome)} at gpa 0x{f.Gpa:x}, hva 0x{f.Hva:x}, under {f.Policy}";
                yield return $"  pfn 0x{f.Pfn:x} ({(f.InLinearMap ? "RAM, in the linear map" : "device memory, not in the linear map")}), user PTE {(f.PteWritable ? "writable" : "read-only")}; mmu_invalidate_seq {f.SampledSeq} -> {f.SeqAtLock}";
                yield return $"  decision: {f.Result} via {f.Path}, prot {f.Prot}: {f.Why}";
            }
            if (x.History.Length > 0) yield return $"history of the page ({x.History.Length}):";
            foreach (var h in x.History)
                yield return $"  seq {h.Seq}{(h.When is null ? "" : h.When == "before" ? " (before that fault)" : " (since)")}: {h.Text}";
        }

        /// <summary>The explanation as one JSON object: <see cref="Explanation"/>'s fields in camelCase,
        /// addresses and other 64-bit values as "0x…" strings, as the event log writes them; a part the
        /// run has nothing for is null.</summary>
        public string Json(string run)
        {
            var o = System.Text.Json.JsonSerializer.SerializeToNode(Explain(), JsonOptions)!.AsObject();
            o.Insert(0, "run", run);
            return o.ToJsonString(CliJson.Plain);
        }

        private static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new(CliJson.CamelCase) { Converters = { new HexConverter() } };

        private sealed class HexConverter : System.Text.Json.Serialization.JsonConverter<ulong>
        {
            public override ulong Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
                Convert.ToUInt64(reader.GetString(), 16);

            public override void Write(System.Text.Json.Utf8JsonWriter writer, ulong value, System.Text.Json.JsonSerializerOptions options) =>
                writer.WriteStringValue($"0x{value:x}");
        }

        /// <summary>Why a stage-2 range went: a memslot change, or the MMU notifier of the same hva range
        /// nearest to it (the same range is notified again at each munmap/mmap churn, and the two actors'
        /// writes may land in either order; the earlier of two as near).</summary>
        private static string CauseOf(Invalidation x)
        {
            if (x.Began is not { } began) return "memslot change";
            var notifier = (x.Before, x.After) switch
            {
                ({ } b, { } a) => x.Seq - b.Seq <= a.Seq - x.Seq ? b : a,
                ({ } b, null) => b,
                (null, { } a) => a,
                _ => ((long, MmuNotifierInvalidateRangeStart)?)null,
            };
            return notifier is { } n
                ? $"MMU notifier {n.Item2.Event} of hva 0x{n.Item2.Start:x}..0x{n.Item2.End:x}, seq {n.Item1}"
                : $"MMU notifier of hva 0x{began.HvaStart:x}..0x{began.HvaEnd:x}";
        }
    }
}

/// <summary>Why a page has its memory type (<see cref="ExplainCommand.Explainer.Explain"/>): the leaf
/// now, and the last fault that mapped it — its memslot, its VMA and the mmap that made it, its inputs
/// and the decision — and the page's other faults and invalidations (<see cref="History"/>, in order).</summary>
public sealed record Explanation(string Vm, ulong Gpa, long Events, ExplainedLeaf? Now, ExplainedMemslot? Memslot, ExplainedMapping? Mapping,
    ExplainedFault? Fault, ExplainedEvent[] History);

public sealed record ExplainedLeaf(string MemType, byte MemAttr, int Level, ulong Gpa, ulong Pfn, bool Writable, bool Executable);

public sealed record ExplainedMemslot(int Slot, ulong Gpa, ulong End, ulong Hva, string Flags, long? SetAtSeq);

public sealed record ExplainedMapping(ulong Start, ulong End, ulong PgOff, string Stage1, string[] Flags, long? MmapSeq, string? Device, int? Region);

/// <param name="Nisv">The access was a data abort without a valid syndrome (FaultInputs.Nisv).</param>
/// <param name="S1ptw">The abort came from the access's stage-1 page-table walk (FaultInputs.S1ptw).</param>
/// <param name="Cm">The access was a cache maintenance instruction (FaultInputs.Cm).</param>
public sealed record ExplainedFault(long Seq, int Vcpu, string Op, bool Nisv, bool S1ptw, bool Cm, ulong Gpa, ulong Hva, string Policy, ulong Pfn, bool InLinearMap, bool PteWritable,
    ulong SampledSeq, ulong SeqAtLock, string Result, string Path, string Prot, string Why)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public AbortSyndrome Syndrome => KvmEmulate.Syndrome(Nisv, S1ptw, Cm);
}

/// <param name="When">"before" or "since" the fault of the explanation; null when there is none.</param>
/// <param name="Kind">"fault" or "invalidation".</param>
public sealed record ExplainedEvent(long Seq, string? When, string Kind, string Text);
