using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;
using Akka.Actor;
using Akka.Configuration;

namespace ActorSim.Actors;

/// <param name="SnapshotEvery">Decider actors save a snapshot every this many events (0: never). Unset:
/// never with a database's journal; every <see cref="InMemorySnapshotEvery"/> with the
/// <see cref="InMemoryJournal"/>, which then keeps only the events after each actor's newest snapshot
/// (<see cref="SnapshotPolicy.DropCoveredEvents"/>), so a long run without a database does not grow.</param>
/// <param name="TestFault">Test-only fault switch that breaks a kernel mechanism on purpose, to prove
/// the invariant checker catches it: "skip-invalidate-retry" installs faults that should have retried.</param>
/// <param name="RegroupWait">Turns on the batchers' regrouping (<see cref="Stage2FaultBatcher"/>): how
/// long a batch waits, at most, for the vCPUs the last batch answered. For closed-loop workloads (each
/// vCPU faults again as soon as it is answered: the bench); off (null) by default — the seeded run's
/// rounds, deterministic runs and scenarios.</param>
/// <param name="SystemSupportsMte">The host CPU has MTE (system_supports_mte(), a scenario's
/// <c>cpu.mte</c>): the mm gives anonymous mappings VM_MTE_ALLOWED, and a VM may have enabled
/// KVM_CAP_ARM_MTE (<see cref="KvmVmDecider.CreateVm"/>). Not in <see cref="KernelPolicy"/>: no stage-2
/// decision reads it, only the VM's own MTE (<see cref="FaultInputs.VmHasMte"/>) and the VMA's flags.</param>
public sealed record SimHostOptions(int MaxBatch = 256, int BatcherCapacity = 4096, TimeSpan? AskTimeout = null, int? SnapshotEvery = null, string? TestFault = null,
    TimeSpan? RegroupWait = null, bool SystemSupportsMte = false)
{
    /// <summary>Snapshots by default in memory: a snapshot there is a reference to the state
    /// (<see cref="InMemorySnapshotStore"/>), so this bounds the events kept per actor. An event is a
    /// batch of up to 256 decisions, and events kept until the next snapshot outlive the young
    /// generations of the GC: at 4 VMs x 64 vCPUs (bench, in memory, five alternations) every 1,000
    /// events had 13-16 % of the time paused for GC, every 100 had 7-9 %.</summary>
    public const int InMemorySnapshotEvery = 100;

    /// <summary>The decider actors' snapshots with the journal <paramref name="system"/> is configured with.</summary>
    public SnapshotPolicy Snapshots(ActorSystem system)
    {
        var inMemory = system.Settings.Config.GetString("akka.persistence.journal.plugin") == InMemoryJournal.PluginId;
        return new SnapshotPolicy(SnapshotEvery ?? (inMemory ? InMemorySnapshotEvery : 0), DropCoveredEvents: inMemory);
    }

    /// <summary>The regroup wait the bench runs with: short, as a fallback for vCPUs that do not fault
    /// again; in a closed loop the batch goes as soon as they are back.</summary>
    public static readonly TimeSpan DefaultRegroupWait = TimeSpan.FromMilliseconds(2);

    public TimeSpan Timeout => AskTimeout ?? TimeSpan.FromSeconds(30);
}

/// <summary>The actors of one simulated host — one VMM process (its mm), its VFIO devices, its VMs
/// with their batchers and vCPUs, and the invariant checker — addressed by name. Persistence ids are
/// "{run}/mm-vmm", "{run}/vfio-NAME", "{run}/kvm-NAME": every per-device and per-VM actor keeps all
/// its state in its own stream, so it could run as a sharded entity keyed by that name.</summary>
public sealed class SimHost
{
    private readonly ActorSystem _system;
    private readonly SimHostOptions _options;
    private readonly Dictionary<string, IActorRef> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _vms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _batchers = new(StringComparer.Ordinal);
    private readonly Dictionary<(string, int), IActorRef> _vcpus = [];

    private SimHost(ActorSystem system, string runId, KernelPolicy policy, SimHostOptions options)
    {
        _system = system;
        RunId = runId;
        Policy = policy;
        _options = options;
    }

    public string RunId { get; }
    public ActorSystem System => _system;
    public KernelPolicy Policy { get; }
    public IActorRef Mm { get; private set; } = ActorRefs.Nobody;
    public IActorRef Checker { get; private set; } = ActorRefs.Nobody;
    public IActorRef Device(string name) => _devices[name];
    public IActorRef Vm(string name) => _vms[name];
    public IActorRef Batcher(string vm) => _batchers[vm];
    public TimeSpan Timeout => _options.Timeout;

    // The run's streams are SyncKernel's (EventStreams names their kinds) within the run.
    public string MmStream => $"{RunId}/{SyncKernel.MmStream}";
    public string DeviceStream(string name) => $"{RunId}/{SyncKernel.DeviceStream(name)}";
    public string VmStream(string name) => $"{RunId}/{SyncKernel.VmStream(name)}";

    /// <summary>HOCON for the actors: the in-memory journal (the Marten journal replaces it through
    /// configuration) and the in-memory snapshot store (<see cref="InMemorySnapshotStore"/>: a snapshot
    /// costs a reference, see <see cref="DeciderActor{TState}.HandOut"/>), and in deterministic mode one
    /// dispatcher thread for every actor and the journal, <c>actorsim.deterministic = on</c>, so a
    /// journal on a database does its work inside its turn too, and virtual time
    /// (<see cref="VirtualClockScheduler"/>, <see cref="SimClock"/>).</summary>
    public static Config BaseConfig(bool deterministic)
    {
        var hocon = """
            akka.loglevel = WARNING
            akka.stdout-loglevel = WARNING
            """;
        if (deterministic)
            hocon += """

                akka.actor.default-dispatcher {
                  type = ForkJoinDispatcher
                  throughput = 1000
                  dedicated-thread-pool { thread-count = 1, threadtype = background }
                }
                akka.actor.internal-dispatcher = ${akka.actor.default-dispatcher}
                akka.persistence.dispatchers.default-plugin-dispatcher = ${akka.actor.default-dispatcher}
                akka.persistence.dispatchers.default-replay-dispatcher = ${akka.actor.default-dispatcher}
                akka.persistence.dispatchers.default-stream-dispatcher = ${akka.actor.default-dispatcher}
                # The Marten plugins then answer from their own turn (ActorSim.Persistence.Journal.InTurn).
                actorsim.deterministic = on
                # Virtual time (SimClock): events are stamped with it, so they are the same every run.
                akka.scheduler.implementation = "ActorSim.Actors.VirtualClockScheduler, ActorSim.Actors"
                """;
        return ConfigurationFactory.ParseString(hocon).WithFallback(InMemoryJournal.Config).WithFallback(InMemorySnapshotStore.Config);
    }

    /// <summary>Creates the actors and wires them (devices registered with the mm, VMs subscribed to
    /// its notifier) before anything runs.</summary>
    public static async Task<SimHost> StartAsync(ActorSystem system, string runId, KernelPolicy policy,
        IReadOnlyList<VfioDevice> devices, IReadOnlyList<KvmVm> vms, SimHostOptions? options = null)
    {
        // A device's or VM's name is its stream's (vfio-NAME, kvm-NAME): a '/' in it made a run whose
        // summary and explain did not find the VM and whose export could not be read back.
        foreach (var name in devices.Select(d => d.Name).Concat(vms.Select(v => v.Name)))
            if (name.Length == 0 || name.Contains('/'))
                throw new ArgumentException($"'{name}' cannot name a device or a VM: it names its event stream, which is not empty and holds no '/'");
        var h = new SimHost(system, runId, policy, options ?? new SimHostOptions());
        var snapshots = h._options.Snapshots(system);
        var safe = PathElement(runId);
        h.Checker = system.ActorOf(InvariantChecker.Props($"{runId}/{EventStreams.Invariants}", policy, h.MmStream,
            devices.ToDictionary(d => h.DeviceStream(d.Name)), vms.ToDictionary(v => h.VmStream(v.Name))), $"checker-{safe}");
        await h.Checker.Ask<Violations>(new GetViolations(), h.Timeout); // subscribed before any event
        h.Mm = system.ActorOf(MmActor.Props(h.MmStream, policy, snapshots, h._options.SystemSupportsMte), $"mm-{safe}");
        foreach (var d in devices)
        {
            var vfio = system.ActorOf(VfioActor.Props(h.DeviceStream(d.Name), d, policy, h.Mm, snapshots), $"vfio-{safe}-{PathElement(d.Name)}");
            h._devices[d.Name] = vfio;
            await h.Mm.Ask<MmResult>(new MmRegisterDevice(d.Name, vfio), h.Timeout);
        }
        foreach (var v in vms)
        {
            var kvm = system.ActorOf(KvmActor.Props(h.VmStream(v.Name), v, policy, h.Mm, snapshots, h._options.TestFault), $"kvm-{safe}-{PathElement(v.Name)}");
            h._vms[v.Name] = kvm;
            h._batchers[v.Name] = system.ActorOf(Stage2FaultBatcher.Props(kvm, h._options.MaxBatch, h._options.BatcherCapacity, h._options.RegroupWait), $"batcher-{safe}-{PathElement(v.Name)}");
            await h.Mm.Ask<MmResult>(new MmSubscribeNotifier(v.Name, kvm), h.Timeout);
        }
        return h;
    }

    /// <summary>The vCPU actor (created on first use).</summary>
    public IActorRef Vcpu(string vm, int index)
    {
        if (!_vcpus.TryGetValue((vm, index), out var v))
            _vcpus[(vm, index)] = v = _system.ActorOf(VcpuActor.Props(index, _batchers[vm]), $"vcpu-{PathElement(RunId)}-{PathElement(vm)}-{index}");
        return v;
    }

    public Task<T> Ask<T>(IActorRef target, object message) => target.Ask<T>(message, Timeout);

    /// <summary>A run's, device's or VM's name as part of an actor's name: escaped as a URI's data
    /// (%XX), which Akka takes in a path element. A scenario's VM named "my vm" ended the process
    /// unhandled (exit 134, InvalidActorNameException).</summary>
    private static string PathElement(string name) => Uri.EscapeDataString(name);
}
