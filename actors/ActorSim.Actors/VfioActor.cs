using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;
using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>One VFIO device (VfioDevice decider): the driver's mmap, its mmap fault handler, and the
/// state changes that zap every BAR mapping through the mm.
/// A zap models vfio_pci_zap_and_down_write_memory_lock: while it runs, memory_lock is held for
/// write, so a fault that arrives then waits and, if the change stops memory decoding, ends in
/// SIGBUS — here it is answered SIGBUS at once. The device's new state is persisted after the mm has
/// zapped, so no one sees "disabled" while a mapping of the device is still there.</summary>
public sealed class VfioActor : DeciderActor<VfioDevice>
{
    private readonly KernelPolicy _policy;
    private readonly IActorRef _mm;
    private bool _zapStopsDecoding;

    // Requests to the mm awaiting its MmResult. The mm finishes requests from one sender in order,
    // so replies come back in the order they were asked (no Ask/PipeTo: a continuation on the thread
    // pool would make the order of messages depend on timing).
    private readonly Queue<Action<MmResult>> _mmReplies = new();

    public VfioActor(string persistenceId, VfioDevice initial, KernelPolicy policy, IActorRef mm, SnapshotPolicy snapshots = default) : base(persistenceId, initial, snapshots)
    {
        _policy = policy;
        _mm = mm;
        Ready();
    }

    public static Props Props(string persistenceId, VfioDevice initial, KernelPolicy policy, IActorRef mm, SnapshotPolicy snapshots = default) =>
        ActorProps.Of(() => new VfioActor(persistenceId, initial, policy, mm, snapshots));

    protected override VfioDevice Evolve(VfioDevice state, IDomainEvent e) => VfioDeviceDecider.Evolve(state, e);

    private void Ready()
    {
        Command<VfioMmapRegion>(OnMmap);
        Command<VfioMmapFault>(OnFault);
        Command<MmResult>(r => _mmReplies.Dequeue()(r));
        Command<VfioSetMemory>(m => Change(VfioDeviceDecider.SetMemoryEnabled(State, m.Enabled)));
        Command<VfioReset>(_ => Change(VfioDeviceDecider.Reset(State)));
        Command<VfioSetPower>(m => Change(VfioDeviceDecider.SetPowerState(State, m.State)));
        Command<VfioGetState>(_ => Sender.Tell(State));
    }

    /// <summary>While the mm zaps: faults still get answers (the mm may be waiting on one), other
    /// state changes wait.</summary>
    private void Zapping()
    {
        Command<VfioMmapFault>(OnFault);
        Command<MmResult>(r => _mmReplies.Dequeue()(r));
        CommandAny(_ => Stash.Stash());
    }

    private void OnMmap(VfioMmapRegion m)
    {
        var replyTo = Sender;
        var err = AddressSpaceDecider.CheckMmapArgs(m.FixedHva, m.Length, m.Offset);
        if (err != Errno.None) { replyTo.Tell(new VfioMmapResult(err, 0)); return; }
        var flags = AddressSpaceDecider.CalcVmFlags(m.Prot, m.Shared, anonymous: false);
        err = VfioDeviceDecider.Mmap(State, _policy, new VfioMmapRequest(m.Region, m.Offset, m.Length, flags), out var template, out var events);
        if (err != Errno.None) { replyTo.Tell(new VfioMmapResult(err, 0)); return; }
        // The region is requested (first mmap of a BAR) before the VMA is installed, as in the kernel.
        PersistEvents(events, () => AskMm(new MmInstallVma(m.FixedHva, template!), r => replyTo.Tell(new VfioMmapResult(r.Errno, r.Hva))));
    }

    private void OnFault(VfioMmapFault f) =>
        Sender.Tell(_zapStopsDecoding
            ? DriverFaultAnswer.SigBus
            : VfioDeviceDecider.MmapFault(State, _policy, f.VmaStart, f.VmaEnd, f.Hva));

    private void Change(Decision d)
    {
        var replyTo = Sender;
        if (!d.Succeeded) { replyTo.Tell(new VfioResult(d.Errno)); return; }
        var zap = d.Events.OfType<VfioBarsZapRequested>().FirstOrDefault();
        if (zap is null)
        {
            PersistEvents(d.Events, () => replyTo.Tell(new VfioResult(Errno.None)));
            return;
        }
        var after = d.Events.Aggregate(State, VfioDeviceDecider.Evolve);
        _zapStopsDecoding = !after.MemoryDecodes;
        BecomeStacked(Zapping);
        AskMm(new MmZapMappingRange(State.Name, [.. zap.Regions]), _ => PersistEvents(d.Events, () =>
        {
            _zapStopsDecoding = false;
            UnbecomeStacked();
            Stash.UnstashAll();
            replyTo.Tell(new VfioResult(Errno.None));
        }));
    }

    private void AskMm(object request, Action<MmResult> onReply)
    {
        _mmReplies.Enqueue(onReply);
        _mm.Tell(request, Self);
    }
}
