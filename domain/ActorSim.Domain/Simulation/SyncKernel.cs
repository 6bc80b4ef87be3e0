using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;

namespace ActorSim.Domain.Simulation;

/// <summary>An event in the order it happened, with the stream (decider instance) it belongs to.</summary>
public sealed record LoggedEvent(long Seq, string Stream, IDomainEvent Event);

/// <summary>What a guest access led to: the decision (null when the access did not fault) and its
/// outcome.</summary>
public sealed record AccessResult(DecisionRecord? Decision, FaultOutcome Outcome);

/// <summary>The deciders of one host (one VMM process, its VFIO devices and VMs) composed on one
/// thread: each operation runs the same Decide functions the actors call, folds the events, and
/// delivers MMU-notifier and zap events to their subscribers in kernel order. Used by domain tests,
/// property tests and as the reference the actors are compared with.</summary>
public sealed class SyncKernel
{
    public const string MmStream = EventStreams.Mm + "vmm";
    public static string DeviceStream(string name) => EventStreams.Vfio + name;
    public static string VmStream(string name) => EventStreams.Kvm + name;

    private readonly SortedDictionary<string, VfioDevice> _devices = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, KvmVm> _vms = new(StringComparer.Ordinal);
    private readonly List<LoggedEvent> _log = [];
    private readonly List<Violation> _violations = [];
    private readonly bool _systemSupportsMte;

    /// <param name="systemSupportsMte">The host CPU has MTE: anonymous mappings get VM_MTE_ALLOWED.</param>
    public SyncKernel(KernelPolicy policy, bool systemSupportsMte = false)
    {
        Policy = policy;
        _systemSupportsMte = systemSupportsMte;
        Mm = AddressSpace.Empty(policy.WordSize);
    }

    public KernelPolicy Policy { get; }
    public AddressSpace Mm { get; private set; }
    public IReadOnlyDictionary<string, VfioDevice> Devices => _devices;
    public IReadOnlyDictionary<string, KvmVm> Vms => _vms;
    public IReadOnlyList<LoggedEvent> Log => _log;
    /// <summary>Violations found by event checks as events were applied.</summary>
    public IReadOnlyList<Violation> EventViolations => _violations;
    public SystemView View => new(Policy, Mm, _devices, _vms);

    public void AddDevice(VfioDevice device) => _devices.Add(device.Name, device);
    public void AddVm(KvmVm vm) => _vms.Add(vm.Name, vm);
    public KvmVm Vm(string name) => _vms[name];
    public VfioDevice Device(string name) => _devices[name];

    /// <summary>VMM: mmap of a VFIO device region (vfio_pci_core_mmap and friends).</summary>
    public Errno MmapDevice(string device, int region, ulong offset, ulong length, bool shared, Prot prot, ulong? fixedHva, out ulong hva)
    {
        hva = 0;
        var err = AddressSpaceDecider.CheckMmapArgs(fixedHva, length, offset);
        if (err != Errno.None) return err;
        var d = _devices[device];
        var flags = AddressSpaceDecider.CalcVmFlags(prot, shared, anonymous: false);
        err = VfioDeviceDecider.Mmap(d, Policy, new VfioMmapRequest(region, offset, length, flags), out var template, out var devEvents);
        if (err != Errno.None) return err;
        Apply(DeviceStream(device), devEvents);
        return Install(fixedHva, template!, out hva);
    }

    /// <summary>VMM: a private anonymous mapping (guest RAM).</summary>
    public Errno MmapRam(ulong length, ulong? fixedHva, out ulong hva)
    {
        hva = 0;
        var err = AddressSpaceDecider.CheckMmapArgs(fixedHva, length, 0);
        if (err != Errno.None) return err;
        var flags = AddressSpaceDecider.CalcVmFlags(Prot.Read | Prot.Write, shared: false, anonymous: true, _systemSupportsMte);
        return Install(fixedHva, new VmaTemplate(length, flags, 0, MairIndex.MT_NORMAL, VmaBacking.Anonymous(0), false), out hva);
    }

    private Errno Install(ulong? fixedHva, VmaTemplate t, out ulong hva)
    {
        hva = 0;
        var d = AddressSpaceDecider.InstallVma(Mm, fixedHva, t);
        if (!d.Succeeded) return d.Errno;
        hva = d.Events.OfType<VmaMapped>().Single().Vma.Start;
        Apply(MmStream, d.Events);
        return Errno.None;
    }

    public Errno Munmap(ulong addr, ulong length) => Run(MmStream, AddressSpaceDecider.Munmap(Mm, addr, length));
    public Errno Mprotect(ulong addr, ulong length, Prot prot) => Run(MmStream, AddressSpaceDecider.Mprotect(Mm, addr, length, prot));

    public Errno SetMemslot(string vm, int slot, MemslotFlags flags, ulong gpa, ulong size, ulong hva)
    {
        var vmas = Mm.VmasIntersecting(hva, hva + size).Select(v => v.Snapshot()).ToArray();
        return Run(VmStream(vm), KvmVmDecider.SetUserMemoryRegion(_vms[vm], Policy, slot, flags, gpa, size, hva, vmas));
    }

    public Errno DeleteMemslot(string vm, int slot) => SetMemslot(vm, slot, MemslotFlags.None, 0, 0, 0);

    /// <summary>A vgic-v2's CPU interface at <paramref name="cpuBase"/>, mapped at the first KVM_RUN
    /// (<see cref="KvmVmDecider.VgicV2MapResources"/>).</summary>
    public Errno VgicV2MapResources(string vm, ulong cpuBase) => Run(VmStream(vm), KvmVmDecider.VgicV2MapResources(_vms[vm], Policy, cpuBase));

    public Errno SetDeviceMemory(string device, bool enabled) => Run(DeviceStream(device), VfioDeviceDecider.SetMemoryEnabled(_devices[device], enabled));
    public Errno ResetDevice(string device) => Run(DeviceStream(device), VfioDeviceDecider.Reset(_devices[device]));
    public Errno SetPowerState(string device, PciPowerState state) => Run(DeviceStream(device), VfioDeviceDecider.SetPowerState(_devices[device], state));

    /// <summary>A guest access: no fault if a leaf permits it; else the three fault phases back to back.
    /// <paramref name="syndrome"/>: the abort's syndrome bits beside the op (<see cref="AbortSyndrome"/>).</summary>
    public AccessResult Access(string vm, int vcpu, ulong gpa, AccessOp op, bool memcacheTopUpFails = false, AbortSyndrome syndrome = AbortSyndrome.None)
    {
        var start = KvmFaultPath.Begin(_vms[vm], vcpu, gpa, op, syndrome);
        if (start.NoFault)
            return new AccessResult(null, new FaultOutcome(FaultResult.AlreadyMapped, Errno.None, start.CoveringLeaf, default, DecisionPath.NoFault));
        var answer = start.NeedsPfn(_vms[vm].IpaBits) ? ResolvePfn(start) : MmPfnAnswer.None;
        var record = KvmFaultPath.Complete(_vms[vm], Policy, start, answer, memcacheTopUpFails);
        Apply(VmStream(vm), [new Stage2FaultResolved(record)]);
        return new AccessResult(record, record.Outcome);
    }

    /// <summary>mm's part of a fault: VMA, pfn, and the driver's fault handler when the PTE is absent.</summary>
    public MmPfnAnswer ResolvePfn(FaultStart start)
    {
        var step = KvmFaultPath.ResolvePfn(Mm, start, out var vma, out var pfnHva);
        if (step.NeedsDriverFault is { } dv)
        {
            var answer = VfioDeviceDecider.MmapFault(_devices[dv.Backing.Device!], Policy, dv.Start, dv.End, pfnHva);
            step = AddressSpaceDecider.CompleteFaultIn(Mm, pfnHva, answer);
        }
        Apply(MmStream, step.Events);
        return new MmPfnAnswer(vma, pfnHva, step.Lookup);
    }

    public IReadOnlyList<Violation> CheckInvariants() => [.. _violations, .. Invariants.Invariants.CheckState(View)];

    private Errno Run(string stream, Decision d)
    {
        if (d.Succeeded) Apply(stream, d.Events);
        return d.Errno;
    }

    /// <summary>Folds events into their decider and delivers what other subsystems must see: MMU
    /// notifier start/end to every VM, zap requests to the mm.</summary>
    private void Apply(string stream, IReadOnlyList<IDomainEvent> events)
    {
        foreach (var e in events)
        {
            _log.Add(new LoggedEvent(_log.Count + 1, stream, e));
            _violations.AddRange(Invariants.Invariants.CheckEvent(e));
            switch (e)
            {
                case MmuNotifierInvalidateRangeStart s:
                    foreach (var name in _vms.Keys.ToArray())
                        Run(VmStream(name), KvmVmDecider.InvalidateRangeStart(_vms[name], s.Start, s.End));
                    break;
                case MmuNotifierInvalidateRangeEnd x:
                    foreach (var name in _vms.Keys.ToArray())
                        Run(VmStream(name), KvmVmDecider.InvalidateRangeEnd(_vms[name], x.Start, x.End));
                    break;
                case VfioBarsZapRequested z:
                    Run(MmStream, AddressSpaceDecider.ZapMappingRange(Mm, z.Device, z.Regions.ToHashSet()));
                    break;
            }
            Fold(stream, e);
        }
    }

    private void Fold(string stream, IDomainEvent e)
    {
        if (stream == MmStream) Mm = AddressSpaceDecider.Evolve(Mm, e);
        else if (stream.StartsWith(EventStreams.Vfio, StringComparison.Ordinal)) { var n = stream[EventStreams.Vfio.Length..]; _devices[n] = VfioDeviceDecider.Evolve(_devices[n], e); }
        else if (stream.StartsWith(EventStreams.Kvm, StringComparison.Ordinal)) { var n = stream[EventStreams.Kvm.Length..]; _vms[n] = KvmVmDecider.Evolve(_vms[n], e); }
    }
}
