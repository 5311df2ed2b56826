/**
 * Charts for the HTML report, rendered to SVG strings when the report is built
 * (Apache ECharts server-side rendering: no DOM, no canvas, no browser), so
 * the page shows them without running JavaScript. Each function takes plain
 * series and returns a Chart: the SVG and the number of data points drawn,
 * which the page records so a test can tell an empty chart from a full one.
 */
import * as echarts from 'echarts';

/** A rendered chart. */
export interface Chart {
  svg: string;
  /** Data points drawn (bars, markers, line vertices). */
  points: number;
}

/** Chart size in CSS pixels (the SVG scales down with the page). */
export const CHART_SIZE = { width: 600, height: 340 };

/** One colour per mode, stable across every chart of a report. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

// Text is laid out here without a browser, from zrender's Arial width table: draw it in Arial or
// its metric twin Liberation Sans so legends and labels land where the layout put them.
const FONT = { fontFamily: 'Arial, "Liberation Sans", Helvetica, sans-serif', fontSize: 12 };

/** The hover text of data item `dataIndex` of series `seriesIndex`, or null for none. */
export type TipFn = (seriesIndex: number, dataIndex: number) => string | null;

function escXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Render an ECharts option to an SVG string (animation off, instance disposed).
 * With `tip`, each data mark gets an SVG <title> child (ECharts' SSR output
 * tags marks with ecmeta_series_index / ecmeta_data_index), which browsers
 * show on hover: the numbers are a hover away without any script.
 */
export function renderSvg(option: echarts.EChartsOption, size = CHART_SIZE, tip?: TipFn): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: size.width, height: size.height });
  let svg: string;
  try {
    chart.setOption({ animation: false, textStyle: FONT, ...option });
    svg = chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
  if (!tip) return svg;
  return svg.replace(/<path\b([^>]*?)\secmeta_series_index="(\d+)" ecmeta_data_index="(\d+)"([^>]*?)(\/?)>/g, (whole, a: string, si: string, di: string, b: string, selfClosing: string) => {
    const text = tip(Number(si), Number(di));
    if (text === null) return whole;
    const open = `<path${a} ecmeta_series_index="${si}" ecmeta_data_index="${di}"${b}>`;
    return selfClosing ? `${open}<title>${escXml(text)}</title></path>` : `${open}<title>${escXml(text)}</title>`;
  });
}

const baseGrid = { left: 84, right: 24, top: 48, bottom: 56, containLabel: false };
const legend = (names: string[]) => ({ type: 'plain' as const, top: 4, left: 8, right: 8, itemGap: 12, data: names, textStyle: FONT });

/**
 * Bars of the median per category with each round drawn as a marker on top
 * (the spread visible at a glance).
 */
export function medianWithRounds(opts: { title: string; unit: string; categories: string[]; medians: (number | null)[]; rounds: (number | null)[][]; colors: string[]; log?: boolean }): Chart {
  const roundPoints: [number, number][] = [];
  const roundOf: number[] = [];
  opts.rounds.forEach((vals, i) =>
    vals.forEach((v, r) => {
      if (v !== null) {
        roundPoints.push([i, v]);
        roundOf.push(r + 1);
      }
    }),
  );
  const tip: TipFn = (s, d) => {
    if (s === 0) {
      const v = opts.medians.at(d);
      return v === null || v === undefined ? null : `${opts.categories[d]}: median ${fmt(v)} ${opts.unit}`;
    }
    const p = roundPoints.at(d);
    return p ? `${opts.categories[p[0]]}, round ${roundOf[d]}: ${fmt(p[1])} ${opts.unit}` : null;
  };
  const points = opts.medians.filter((v) => v !== null).length + roundPoints.length;
  const svg = renderSvg(
    {
      title: { text: opts.title, left: 'center', textStyle: { ...FONT, fontSize: 14 } },
      grid: { ...baseGrid, top: 40 },
      xAxis: { type: 'category', data: opts.categories, axisLabel: { interval: 0, rotate: opts.categories.length > 5 ? 20 : 0, ...FONT } },
      yAxis: { type: opts.log ? 'log' : 'value', name: opts.unit, nameTextStyle: FONT },
      series: [
        {
          type: 'bar',
          name: 'median',
          barWidth: '50%',
          data: opts.medians.map((v, i) => ({ value: v ?? '-', itemStyle: { color: opts.colors[i], opacity: 0.75 } })),
          label: { show: true, position: 'insideTop', formatter: (p: { value: unknown }) => (typeof p.value === 'number' ? fmt(p.value) : ''), ...FONT },
        } satisfies echarts.BarSeriesOption,
        { type: 'scatter', name: 'rounds', symbolSize: 9, itemStyle: { color: '#222', borderColor: '#fff', borderWidth: 1 }, data: roundPoints } satisfies echarts.ScatterSeriesOption,
      ],
    },
    CHART_SIZE,
    tip,
  );
  return { svg, points };
}

/** Lines over x (one per series), e.g. iperf3 interval throughput over seconds. */
export function lines(opts: {
  title: string;
  xName: string;
  unit: string;
  series: { name: string; color: string; points: [number, number][]; dashed?: boolean; tipName?: string }[];
  xLog?: boolean;
  yLog?: boolean;
  xLabels?: (v: number) => string;
  yMin?: number;
  xMin?: number;
  xInteger?: boolean;
}): Chart {
  const names = [...new Set(opts.series.map((s) => s.name))];
  const points = opts.series.reduce((t, s) => t + s.points.length, 0);
  const svg = renderSvg(
    {
      title: { text: opts.title, left: 'center', top: names.length > 6 ? 52 : 22, textStyle: { ...FONT, fontSize: 14 } },
      legend: legend(names),
      grid: { ...baseGrid, top: names.length > 6 ? 96 : 64 },
      xAxis: {
        type: opts.xLog ? 'log' : 'value',
        name: opts.xName,
        nameLocation: 'middle',
        nameGap: 28,
        nameTextStyle: FONT,
        axisLabel: { ...FONT, ...(opts.xLabels ? { formatter: opts.xLabels } : {}) },
        min: opts.xMin ?? (opts.xLog ? undefined : 'dataMin'),
        max: 'dataMax',
        minInterval: opts.xInteger ? 1 : undefined,
      },
      yAxis: { type: opts.yLog ? 'log' : 'value', name: opts.unit, nameTextStyle: FONT, min: opts.yMin },
      series: opts.series.map((s) => ({
        type: 'line',
        name: s.name,
        data: s.points,
        showSymbol: true,
        symbolSize: 4,
        lineStyle: { color: s.color, width: 1.5, type: s.dashed ? 'dashed' : 'solid' },
        itemStyle: { color: s.color },
      })),
    },
    CHART_SIZE,
    (si, di) => {
      const p = opts.series.at(si)?.points.at(di);
      return p
        ? `${opts.series[si].tipName ?? opts.series[si].name}: ${opts.xLabels ? opts.xLabels(p[0]) : `${opts.xName} ${Number.isInteger(p[0]) ? p[0] : fmt(p[0])}`}, ${fmt(p[1])} ${opts.unit}`
        : null;
    },
  );
  return { svg, points };
}

/** Bars of several series per category (grouped, or stacked where series share a `stack`). */
export function bars(opts: {
  title: string;
  unit: string;
  categories: string[];
  series: { name: string; color: string; data: (number | null)[]; stack?: string }[];
  log?: boolean;
  horizontal?: boolean;
}): Chart {
  const points = opts.series.reduce((t, s) => t + s.data.filter((v) => v !== null).length, 0);
  const cat = { type: 'category' as const, data: opts.categories, axisLabel: { interval: 0, ...FONT, rotate: !opts.horizontal && opts.categories.length > 5 ? 20 : 0 } };
  const axisType: 'log' | 'value' = opts.log ? 'log' : 'value';
  const val = { type: axisType, name: opts.unit, nameTextStyle: FONT };
  const svg = renderSvg(
    {
      title: { text: opts.title, left: 'center', top: 22, textStyle: { ...FONT, fontSize: 14 } },
      legend: legend(opts.series.map((s) => s.name)),
      grid: { ...baseGrid, top: 64, left: opts.horizontal ? 120 : baseGrid.left },
      xAxis: opts.horizontal ? val : cat,
      yAxis: opts.horizontal ? { ...cat, inverse: true } : val,
      series: opts.series.map((s) => ({ type: 'bar', name: s.name, stack: s.stack, itemStyle: { color: s.color }, data: s.data.map((v) => v ?? '-') })),
    },
    CHART_SIZE,
    (si, di) => {
      const v = opts.series.at(si)?.data.at(di);
      return v === null || v === undefined ? null : `${opts.categories[di]}, ${opts.series[si].name}: ${fmt(v)} ${opts.unit}`;
    },
  );
  return { svg, points };
}

/** Three significant digits. */
export function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}
