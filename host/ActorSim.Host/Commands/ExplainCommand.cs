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
        var a = Args.Parse("explain", args, [], ["--db", "--run", "--vm", "--gpa", "--file"]);
        var vm = a.Get("--vm") ?? throw new UsageException("explain: --vm NAME is required");
        var gpaText = a.Get("--gpa") ?? throw new UsageException("explain: --gpa ADDR is required");
        if (!TryAddress(gpaText, out var gpa)) throw new UsageException($"explain: --gpa '{gpaText}' is not an address");
        List<RunEvent> events = [];
        string run;
        if (a.Get("--file") is { } file)
        {
            try { var (h, ev) = EventLogFile.Read(file); events = ev; run = h.Run; }
            catch (EventLogFormatException e) { Console.Error.WriteLine($"actorsim explain: {e.Message}"); return 2; }
        }
        else
        {
            run = a.Get("--run") ?? throw new UsageException("explain: --run ID (or --file FILE) is required");
            var cs = Database.ConnectionString(a.Get("--db")) ?? throw new UsageException("explain: no database: give --db or set ACTORSIM_DB");
            if (!await Database.ReachableAsync(cs)) return 3;
            await foreach (var e in RunLog.ReadAsync(MartenStores.Get(cs), run)) events.Add(e);
        }
        if (events.Count == 0) { Console.Error.WriteLine($"actorsim explain: run '{run}' has no events"); return 2; }
        // A VM's events are its KvmActor's stream (SimHost.VmStream: "kvm-NAME" within the run).
        var vms = events.Select(e => e.Stream).Where(x => x.StartsWith("kvm-", StringComparison.Ordinal)).Select(x => x["kvm-".Length..]).Distinct().Order(StringComparer.Ordinal).ToList();
        if (!vms.Contains(vm))
        {
            Console.Error.WriteLine($"actorsim explain: --vm: run '{run}' has no VM '{vm}' (its VMs: {(vms.Count == 0 ? "none" : string.Join(", ", vms))})");
            return 2;
        }
        foreach (var line in Explain(events, vm, gpa)) Console.WriteLine(line);
        return 0;
    }

    private static bool TryAddress(string s, out ulong v) =>
        s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v)
            : ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);

    private static string Flags(VmFlags f) => string.Join(" ", VmFlagBits.Names(f));

    public static IEnumerable<string> Explain(IReadOnlyList<RunEvent> events, string vm, ulong gpa)
    {
        var page = gpa & ~0xFFFUL;
        var replay = new Replay();
        foreach (var e in events) replay.Apply(e.Seq, e.Stream, e.Event);
        yield return $"explain {vm} gpa 0x{gpa:x} ({events.Count} events)";
        var leaf = replay.Vms.TryGetValue(vm, out var state) ? state.Stage2.Lookup(gpa) : null;
        // Every decision about this page, with the event it came in (a batch event holds several).
        var decisions = events.SelectMany(e => DecisionEvents.Of(e.Event).Select(d => (Event: e, Decision: d)))
            .Where(x => x.Decision.Inputs.Vm == vm &&
                        ((x.Decision.Inputs.Gpa & ~0xFFFUL) == page || x.Decision.Outcome.Leaf is { } l && l.Contains(gpa))).ToList();
        var lastFound = decisions.LastOrDefault(x => x.Decision.Outcome.Leaf is not null);
        var last = lastFound.Event;
        if (leaf is { } now)
        {
            var fwb = last is null || lastFound.Decision.Inputs.Policy.Cpu.Fwb;
            var type = MemAttr.TypeOf(now.MemAttr, fwb) is { } t ? MemAttr.MemTypeOf(t).Name() : "?";
            yield return $"now: {type} (MemAttr 0x{now.MemAttr:x}), L{now.Level} leaf at gpa 0x{now.Gpa:x} -> pfn 0x{now.Pfn:x}, {(now.Writable ? "writable" : "read-only")}, {(now.Executable ? "executable" : "XN")}";
        }
        else yield return "now: unmapped at stage 2";

        if (last is null)
        {
            yield return "no decision mapped this page";
        }
        else
        {
            var d = lastFound.Decision;
            var i = d.Inputs;
            if (i.Slot is { } slot)
            {
                var set = events.LastOrDefault(e => e.Seq < last.Seq && e.Event is MemslotSet m && m.Vm == vm && m.Slot.Id == slot.Id);
                yield return $"memslot: slot {slot.Id} gpa 0x{slot.BaseGpa:x}..0x{slot.EndGpa:x} -> hva 0x{slot.UserspaceAddr:x}, flags {slot.Flags}" + (set is null ? "" : $" (set at seq {set.Seq})");
            }
            if (i.Vma is { } vma)
            {
                var mapped = events.LastOrDefault(e => e.Seq < last.Seq && e.Event is VmaMapped m && m.Vma.Contains(i.Hva));
                var backing = mapped?.Event is VmaMapped vm2 ? vm2.Vma.Backing : null;
                yield return $"mapping: VMA 0x{vma.Start:x}..0x{vma.End:x} pgoff 0x{vma.PgOff:x} stage-1 {vma.S1} flags {Flags(vma.Flags)}" +
                             (mapped is null ? "" : $" (mmap at seq {mapped.Seq}{(backing?.Device is { } dev ? $", {dev} region {backing.Region}" : ", anonymous memory")})");
            }
            yield return $"fault: seq {last.Seq} vcpu {i.Vcpu} {i.Op.ToString().ToLowerInvariant()} at gpa 0x{i.Gpa:x}, hva 0x{i.Hva:x}, under {i.Policy}";
            yield return $"  pfn 0x{i.Pfn.Pfn:x} ({(i.Pfn.IsMapMemory ? "RAM, in the linear map" : "device memory, not in the linear map")}), user PTE {(i.Pfn.Writable ? "writable" : "read-only")}; mmu_invalidate_seq {i.SampledSeq} -> {i.SeqAtLock}";
            var why = i.Vma is { } v && !i.Pfn.IsMapMemory
                ? i.Policy.RuleSet == RuleSet.V6_8 ? "6.8 has no VM_ALLOW_ANY_UNCACHED: device memory is Device-nGnRE"
                : i.Policy.RuleSet == RuleSet.V6_17 && v.S1.IsCacheable() ? "6.17: the VMA's stage-1 type is cacheable, so the PFNMAP maps Normal (FWB+DIC)"
                : v.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED) ? "the VMA has VM_ALLOW_ANY_UNCACHED: device memory maps Normal-NC"
                : "the VMA lacks VM_ALLOW_ANY_UNCACHED: device memory stays Device-nGnRE"
                : "RAM maps Normal write-back";
            yield return $"  decision: {d.Outcome.Result} via {d.Outcome.Path}, prot {d.Outcome.Prot}: {why}";
        }
        ILookup<(ulong Start, ulong End), RunEvent>? notifiers = null; // the mm's notifier events by hva range, made once
        // The page's other faults and its invalidations, in the order they happened, each placed against
        // the fault above (before it, or since).
        var history = decisions.Where(x => !ReferenceEquals(x.Decision, lastFound.Decision))
            .Select(x => (x.Event.Seq, Text: $"fault: vcpu {x.Decision.Inputs.Vcpu} {x.Decision.Inputs.Op.ToString().ToLowerInvariant()} -> {x.Decision.Outcome}"))
            .Concat(events.Select((e, index) => (e, index)).Where(x => x.e.Event is Stage2RangeUnmapped u && u.Vm == vm && u.Gpa <= gpa && gpa < u.End).Select(x =>
            {
                var u = (Stage2RangeUnmapped)x.e.Event;
                return (x.e.Seq, Text: $"invalidation: stage-2 0x{u.Gpa:x}..0x{u.End:x} unmapped ({CauseOf(x.index)})");
            }))
            .OrderBy(x => x.Seq).ToList();
        if (history.Count > 0) yield return $"history of the page ({history.Count}):";
        foreach (var (seq, text) in history)
            yield return $"  seq {seq}{(last is null ? "" : seq < last.Seq ? " (before that fault)" : " (since)")}: {text}";

        // Why a stage-2 range went: KVM's invalidate_range_start writes MmuInvalidateBegan and then the
        // ranges it unmapped, one event batch (KvmVmDecider.InvalidateRangeStart); a memslot change writes
        // the ranges alone. The mm's notifier event for the same hva range says what ran it.
        string CauseOf(int index)
        {
            var unmapped = events[index];
            MmuInvalidateBegan? began = null;
            for (var i = index - 1; i >= 0; i--) // back through this stream's events to the first that is not an unmapped range
            {
                if (events[i].Stream != unmapped.Stream || events[i].Event is Stage2RangeUnmapped) continue;
                began = events[i].Event as MmuInvalidateBegan;
                break;
            }
            if (began is null) return "memslot change";
            // The nearest one (the same range is notified again at each munmap/mmap churn; the two
            // actors' writes may land in either order).
            notifiers ??= events.Where(x => x.Event is MmuNotifierInvalidateRangeStart).ToLookup(x => (((MmuNotifierInvalidateRangeStart)x.Event).Start, ((MmuNotifierInvalidateRangeStart)x.Event).End));
            var notifier = notifiers[(began.HvaStart, began.HvaEnd)].MinBy(x => Math.Abs(x.Seq - unmapped.Seq));
            return notifier?.Event is MmuNotifierInvalidateRangeStart s
                ? $"MMU notifier {s.Event} of hva 0x{s.Start:x}..0x{s.End:x}, seq {notifier.Seq}"
                : $"MMU notifier of hva 0x{began.HvaStart:x}..0x{began.HvaEnd:x}";
        }
    }
}
