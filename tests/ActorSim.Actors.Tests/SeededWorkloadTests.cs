using ActorSim.Actors.Scenarios;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Stage2;
using Akka.Actor;

namespace ActorSim.Actors.Tests;

/// <summary>The seeded workload of <c>actorsim run</c> reaches what each rule set decides differently:
/// the Grace Hopper GPU's cacheable usemem (a PFNMAP VMA with a cacheable stage-1 type) and its
/// write-combined resmem (VM_ALLOW_ANY_UNCACHED) beside the vfio-pci BARs.</summary>
public class SeededWorkloadTests
{
    private static async Task<DecisionRecord[]> Decisions(KernelPolicy policy)
    {
        using var system = ActorSystem.Create("seeded", SimHost.BaseConfig(deterministic: true));
        var recorder = system.ActorOf(Props.Create(() => new EventRecorder()));
        await recorder.Ask<EventRecorder.Events>(new EventRecorder.Get());
        var host = await SimHost.StartAsync(system, "seeded", policy, SeededWorkload.Devices(), SeededWorkload.Vms(2));
        var w = await SeededWorkload.SetUpAsync(host, seed: 3, vms: 2, vcpus: 4);
        for (var i = 0; i < 150; i++) await w.RoundAsync();
        Assert.Empty((await host.Ask<Violations>(host.Checker, new GetViolations())).Items);
        var events = await recorder.Ask<EventRecorder.Events>(new EventRecorder.Get());
        await system.Terminate();
        return [.. events.Items.SelectMany(e => DecisionEvents.Of(e.Event))];
    }

    /// <summary>usemem: VM_PFNMAP with a cacheable stage-1 type (MT_NORMAL), no VM_ALLOW_ANY_UNCACHED.</summary>
    private static bool Usemem(DecisionRecord d) =>
        d.Inputs.Vma is { } v && v.Flags.Has(VmFlags.VM_PFNMAP) && v.S1.IsCacheable() && !d.Inputs.Pfn.IsMapMemory;

    private static bool Resmem(DecisionRecord d) => d.Inputs.Vma is { S1: MairIndex.MT_NORMAL_NC } v && v.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED);

    private static bool Mapped(DecisionRecord d) => d.Outcome.Result == FaultResult.Mapped;
    private static bool Device(DecisionRecord d) => (d.Outcome.Prot & KvmPgtableProt.KVM_PGTABLE_PROT_DEVICE) != 0;
    private static bool NormalNc(DecisionRecord d) => (d.Outcome.Prot & KvmPgtableProt.KVM_PGTABLE_PROT_NORMAL_NC) != 0;

    [Fact]
    public async Task Under_6_9_usemem_maps_Device_nGnRE_and_resmem_Normal_NC()
    {
        var d = await Decisions(KernelPolicy.Of("6.9"));
        Assert.Contains(d, x => Usemem(x) && Mapped(x));
        Assert.All(d.Where(x => Usemem(x) && Mapped(x)), x => Assert.True(Device(x), x.Outcome.ToString()));
        Assert.Contains(d, x => Resmem(x) && Mapped(x));
        Assert.All(d.Where(x => Resmem(x) && Mapped(x)), x => Assert.True(NormalNc(x), x.Outcome.ToString()));
    }

    [Fact]
    public async Task Under_6_17_with_FWB_and_DIC_usemem_maps_Normal_WB_and_without_FWB_its_memslot_is_refused()
    {
        var d = await Decisions(KernelPolicy.Of("6.17"));
        Assert.Contains(d, x => Usemem(x) && Mapped(x));
        Assert.All(d.Where(x => Usemem(x) && Mapped(x)), x => Assert.False(Device(x) || NormalNc(x), x.Outcome.ToString()));
        Assert.All(d.Where(x => Resmem(x) && Mapped(x)), x => Assert.True(NormalNc(x), x.Outcome.ToString()));

        // kvm_arch_prepare_memory_region refuses a cacheable PFNMAP slot without FWB: no decision reads
        // usemem, and the guest's accesses there find no memslot (MMIO exits).
        var noFwb = await Decisions(new KernelPolicy(RuleSet.V6_17, new CpuFeatures(Fwb: false, Dic: true)));
        Assert.DoesNotContain(noFwb, Usemem);
        Assert.Contains(noFwb, x => x.Outcome.Path == DecisionPath.NoMemslotMmio);
    }
}
