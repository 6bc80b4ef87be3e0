using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;

namespace ActorSim.Domain.Simulation;

/// <summary>The kinds of stream, and which stream each event belongs in, as <see cref="SyncKernel"/> and the
/// actors (SimHost, within the run) name them: the mm's events in "mm-…", a device's in "vfio-DEVICE", a
/// VM's in "kvm-VM", the checker's in "invariants".
/// Replay and explain fold a stream by its name (a "kvm-VM" stream into VM VM), so an event in
/// another's stream would be folded into the wrong state, or into none, without a word.</summary>
public static class EventStreams
{
    public const string Mm = "mm-";
    public const string Vfio = "vfio-";
    public const string Kvm = "kvm-";
    public const string Invariants = "invariants";

    /// <summary>Why <paramref name="e"/> cannot be in <paramref name="stream"/> (a run's stream, without its
    /// run's prefix), with the field that says so ("stream", or the event's "data.vm" …), or null. A stream
    /// whose name is none of the four kinds (a journal written by other code) may hold any event.</summary>
    public static (string Field, string Why)? Misplaced(string stream, IDomainEvent e)
    {
        var kind = stream.StartsWith(Mm, StringComparison.Ordinal) ? Mm
            : stream.StartsWith(Vfio, StringComparison.Ordinal) ? Vfio
            : stream.StartsWith(Kvm, StringComparison.Ordinal) ? Kvm
            : stream == Invariants ? Invariants : null;
        if (kind is null) return null;
        var (owner, field, name) = e switch
        {
            // The decisions first: most of a run's events.
            Stage2FaultsResolved => (Kvm, null, null), // each decision's VM below
            Stage2FaultResolved x => (Kvm, "data.decision.inputs.vm", x.Decision.Inputs.Vm),
            VmaMapped or VmaRangeUnmapped or VmaProtectionChanged or UserPtesPopulated or UserPtesPopulatedBatch or UserPtesZapped
                or MmuNotifierInvalidateRangeStart or MmuNotifierInvalidateRangeEnd => (Mm, null, null),
            VfioBarRequested x => (Vfio, "data.device", x.Device),
            VfioMemoryToggled x => (Vfio, "data.device", x.Device),
            VfioPowerStateChanged x => (Vfio, "data.device", x.Device),
            VfioDeviceReset x => (Vfio, "data.device", x.Device),
            VfioBarsZapRequested x => (Vfio, "data.device", x.Device),
            MemslotSet x => (Kvm, "data.vm", x.Vm),
            MemslotDeleted x => (Kvm, "data.vm", x.Vm),
            MmuInvalidateBegan x => (Kvm, "data.vm", x.Vm),
            MmuInvalidateEnded x => (Kvm, "data.vm", x.Vm),
            Stage2RangeUnmapped x => (Kvm, "data.vm", x.Vm),
            Stage2DeviceIoremapped x => (Kvm, "data.vm", x.Vm),
            InvariantViolationDetected => (Invariants, null, (string?)null),
            _ => (null, null, null),
        };
        if (owner is null) return null;
        if (owner != kind) return ("stream", $"'{stream}' is {Whose(kind)} stream; the event is {Whose(owner)}");
        var expected = stream[kind.Length..];
        if (e is Stage2FaultsResolved many)
            for (var k = 0; k < many.Decisions.Length && field is null; k++)
                if (many.Decisions[k].Inputs.Vm != expected) (field, name) = ($"data.decisions[{k}].inputs.vm", many.Decisions[k].Inputs.Vm);
        return field is not null && name != expected
            ? (field, $"'{name}', in the stream of {(kind == Kvm ? "VM" : "device")} '{expected}' ('{stream}')")
            : null;
    }

    private static string Whose(string kind) => kind switch
    {
        Mm => "the mm's",
        Vfio => "a device's",
        Kvm => "a VM's",
        _ => "the invariant checker's",
    };
}
