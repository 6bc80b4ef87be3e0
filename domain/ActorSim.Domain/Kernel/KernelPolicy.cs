namespace ActorSim.Domain.Kernel;

/// <summary>A rule set, named by the first kernel that has it (kernel-model.md version map).</summary>
public enum RuleSet
{
    /// <summary>v6.8 and earlier: no VM_ALLOW_ANY_UNCACHED; device pfns map Device-nGnRE.</summary>
    V6_8,
    /// <summary>v6.9 .. v6.16: the VM_ALLOW_ANY_UNCACHED series (c034ec84e879 .. a39d3a966a09).</summary>
    V6_9,
    /// <summary>v6.17+: cacheable PFNMAP (8cc9dc1ae4fb .. f55ce5a6cd33).</summary>
    V6_17,
}

public static class RuleSets
{
    public static string Label(this RuleSet r) => r switch
    {
        RuleSet.V6_8 => "6.8",
        RuleSet.V6_9 => "6.9",
        RuleSet.V6_17 => "6.17",
        _ => throw new ArgumentOutOfRangeException(nameof(r)),
    };

    public static bool TryParse(string label, out RuleSet ruleSet)
    {
        (var ok, ruleSet) = label switch
        {
            "6.8" => (true, RuleSet.V6_8),
            "6.9" => (true, RuleSet.V6_9),
            "6.17" => (true, RuleSet.V6_17),
            _ => (false, RuleSet.V6_9),
        };
        return ok;
    }
}

/// <summary>CPU features that change the decision: FEAT_S2FWB (ARM64_HAS_STAGE2_FWB) and CTR_EL0.DIC
/// (ARM64_HAS_CACHE_DIC).</summary>
public readonly record struct CpuFeatures(bool Fwb, bool Dic)
{
    public static CpuFeatures Default => new(true, true);
}

/// <summary>One modelled kernel: rule set, CPU features and word size. Policies differ only where
/// the kernels differ.</summary>
public sealed record KernelPolicy(RuleSet RuleSet, CpuFeatures Cpu, WordSize WordSize = WordSize.Bits64)
{
    public static KernelPolicy Of(string label, bool fwb = true, bool dic = true) =>
        RuleSets.TryParse(label, out var r) ? new KernelPolicy(r, new CpuFeatures(fwb, dic))
            : throw new ArgumentException($"unknown kernel rule set '{label}' (6.8, 6.9, 6.17)", nameof(label));

    /// <summary>The flag vfio-pci and nvgrace resmem set at mmap: absent before v6.9, VM_NONE on 32-bit.</summary>
    public VmFlags AllowAnyUncachedFlag =>
        RuleSet >= RuleSet.V6_9 ? VmFlagBits.AllowAnyUncached(WordSize) : VmFlags.VM_NONE;

    /// <summary>kvm_supports_cacheable_pfnmap() = FWB && DIC (v6.17).</summary>
    public bool SupportsCacheablePfnmap => Cpu.Fwb && Cpu.Dic;

    /// <summary>v6.9 and earlier rewrite vm_pgoff of a BAR mapping to the BAR's pfn; later kernels keep
    /// the region-encoded offset (kernel-model.md §2.2 [U: v6.10]).</summary>
    public bool VfioRewritesPgoff => RuleSet <= RuleSet.V6_9;

    /// <summary>≤ v6.9 the vfio-pci fault handler maps the whole VMA (io_remap_pfn_range); v6.12+ only
    /// the faulting page (vfio_pci_mmap_huge_fault, order 0).</summary>
    public bool VfioFaultMapsWholeVma => RuleSet <= RuleSet.V6_9;

    public override string ToString() =>
        $"{RuleSet.Label()} fwb={(Cpu.Fwb ? 1 : 0)} dic={(Cpu.Dic ? 1 : 0)} word={(int)WordSize}";
}
