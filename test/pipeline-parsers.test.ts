import iconv from 'iconv-lite';
import zlib from 'node:zlib';
import { PARSERS, detectFormat } from '../activities/parsers';
import { clipTurn } from '../lib/domain/memory';
import { CairnError } from '../lib/errors';
import { makeCjkPdf, makeDocx, makePdf } from './fixtures/documents';

const bytes = (text: string) => new TextEncoder().encode(text);

async function refusal(run: () => unknown): Promise<CairnError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof CairnError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('parsers: the real type comes from the bytes, bad input is refused by name', () => {
  it('reads PDF pages in order and keeps the page of each section', async () => {
    const pdf = await makePdf([['First page about Faro'], ['Second page about Tavira']], { title: 'Algarve' });
    const document = await PARSERS.PDF(pdf, { format: 'PDF' });
    expect(document.title).toBe('Algarve');
    expect(document.pages).toBe(2);
    expect(document.sections.map((section) => [section.page, section.text])).toEqual([
      [1, 'First page about Faro'],
      [2, 'Second page about Tavira'],
    ]);
  });

  it('reads a PDF giving way to timers and sockets between pages, and refuses one of more pages than it may have', async () => {
    // 1,500 pages in one flat list: pdf.js answers itself in promises, which held the event loop for
    // the whole read (minutes for larger ones), so the worker's heartbeats and other jobs waited.
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 20);
    try {
      const read = await PARSERS.PDF(flatPdf(1_500), { format: 'PDF' });
      expect(read.pages).toBe(1_500);
    } finally {
      clearInterval(ticking);
    }
    expect(ticks).toBeGreaterThan(2);
    const started = Date.now();
    expect((await refusal(() => PARSERS.PDF(flatPdf(10_001), { format: 'PDF' }))).message).toBe('the PDF has 10,001 pages, over the 10,000 one may have: split it');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('reads a Chinese PDF set through a predefined CMap (no ToUnicode map), with pdf.js’s character maps', async () => {
    const parsed = await PARSERS.PDF(Buffer.from(await makeCjkPdf(['我的妹妹住在上海，她喜欢吃小笼包。', '李明在医院工作。'])), { format: 'PDF' });
    expect(parsed.text).toBe('我的妹妹住在上海，她喜欢吃小笼包。\n李明在医院工作。');
  });

  it('refuses a corrupt PDF with a readable reason', async () => {
    const corrupt = bytes('%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a real pdf body\n%%EOF');
    const error = await refusal(() => PARSERS.PDF(corrupt, { format: 'PDF' }));
    expect(error.code).toBe('bad_input');
    expect(error.message).toMatch(/^the PDF could not be read/);
  });

  it('detects what the bytes are, whatever was declared', async () => {
    const pdf = await makePdf([['x']]);
    const docx = await makeDocx([{ heading: 'h', paragraphs: ['p'] }]);
    expect(detectFormat(pdf, 'TXT').format).toBe('PDF');
    expect(detectFormat(docx, 'PDF')).toMatchObject({ format: 'DOCX', note: expect.stringMatching(/declared PDF/) });
    expect(detectFormat(bytes('just some words'), 'PDF')).toMatchObject({ format: 'TXT' });
    expect(detectFormat(bytes('<!doctype html><p>x</p>'), 'DOCX').format).toBe('HTML');
    expect(detectFormat(bytes('{"a":1}'), 'URL', 'application/json').format).toBe('JSON');
    expect(detectFormat(bytes('a,b\n1,2'), 'URL', 'text/csv; charset=utf-8').format).toBe('CSV');
    expect(detectFormat(bytes('<html><body>x'), 'URL', undefined).format).toBe('HTML');
    expect(detectFormat(bytes('a note'), 'CSV').format).toBe('CSV');
  });

  it('refuses images, archives and legacy Office files by name', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
    expect((await refusal(() => detectFormat(png, 'PDF'))).message).toMatch(/PNG image/);
    const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, ...bytes('somefile.txt')]);
    expect((await refusal(() => detectFormat(zip, 'DOCX'))).message).toMatch(/ZIP archive, not a DOCX/);
    const ole = new Uint8Array([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0]);
    expect((await refusal(() => detectFormat(ole, 'DOCX'))).code).toBe('unsupported_media_type');
    expect((await refusal(() => detectFormat(bytes('\u0000'), 'URL', 'image/svg+xml'))).message).toMatch(/image\/svg\+xml/);
  });

  it('refuses binary content declared as text, invalid JSON, empty CSV and a broken DOCX', async () => {
    const binary = new Uint8Array(4096).map((_, i) => (i * 7919) % 256);
    expect((await refusal(() => PARSERS.TXT(binary, { format: 'TXT' }))).message).toMatch(/is not text/);
    expect((await refusal(() => PARSERS.JSON(bytes('{"a":'), { format: 'JSON' }))).message).toMatch(/JSON is not valid/);
    expect((await refusal(() => PARSERS.CSV(bytes('a,b,c\n'), { format: 'CSV' }))).message).toMatch(/no data rows/);
    const docx = await makeDocx([{ heading: 'h', paragraphs: ['p'] }]);
    expect((await refusal(() => PARSERS.DOCX(docx.slice(0, 200), { format: 'DOCX' }))).message).toMatch(/DOCX file could not be read/);
  });

  it('bounds what a small upload can expand to: deep nesting, repeated headers, a DOCX that unpacks to hundreds of MB', async () => {
    // Nested far past any real layout: read without Readability, not refused.
    const html = (depth: number) => `<html><body>${'<div>'.repeat(depth)}<p>Deep inside, the keeper wrote notes.</p>${'</div>'.repeat(depth)}</body></html>`;
    expect((await PARSERS.HTML(bytes(html(5000)), { format: 'HTML' })).text).toContain('the keeper wrote notes');
    // Read without recursion (9,000 levels overflowed the call stack); past 10,000 refused before a tree is built.
    expect((await PARSERS.HTML(bytes(html(9990)), { format: 'HTML' })).text).toContain('the keeper wrote notes');
    expect((await refusal(() => PARSERS.HTML(bytes(html(200_000)), { format: 'HTML' }))).message).toBe('the HTML page is nested over 10,000 elements deep');
    expect((await refusal(() => PARSERS.JSON(bytes(`${'{"a":'.repeat(20_000)}"x"${'}'.repeat(20_000)}`), { format: 'JSON' }))).message).toMatch(/nested over 64 levels/);
    const header = Array.from({ length: 2000 }, (_, i) => `column_${i}_${'x'.repeat(40)}`).join(',');
    const rows = Array.from({ length: 600 }, () => Array.from({ length: 2000 }, () => 'v').join(',')).join('\n');
    expect((await refusal(() => PARSERS.CSV(bytes(`${header}\n${rows}`), { format: 'CSV' }))).message).toMatch(/expands to over 50,000,000 characters/);
    // A ZIP whose directory says word/document.xml inflates to 400 MB: refused before anything is inflated.
    const name = Buffer.from('word/document.xml');
    const central = Buffer.alloc(46 + name.length);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt32LE(400_000_000, 24);
    central.writeUInt16LE(name.length, 28);
    name.copy(central, 46);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(1, 8);
    end.writeUInt16LE(1, 10);
    end.writeUInt32LE(central.length, 12);
    end.writeUInt32LE(0, 16);
    expect((await refusal(() => PARSERS.DOCX(Buffer.concat([central, end]), { format: 'DOCX' }))).message).toMatch(/unpacks to 400 MB of XML/);
    // Any part counts, not only the document: 50 MB of styles that say they are 100 bytes, and 500 MB
    // of styles that say so.
    const styles = zlib.deflateRawSync(Buffer.alloc(50_000_000, 0x20));
    expect((await refusal(() => PARSERS.DOCX(zipOf([{ name: 'word/styles.xml', data: styles, size: 100 }, { name: 'word/document.xml', data: zlib.deflateRawSync('<w:document/>'), size: 13 }]), { format: 'DOCX' }))).message).toMatch(/word\/styles\.xml unpacks to more than its recorded 100 bytes/);
    expect((await refusal(() => PARSERS.DOCX(zipOf([{ name: 'word/styles.xml', data: styles, size: 500_000_000 }]), { format: 'DOCX' }))).message).toMatch(/unpacks to 500 MB, over the 200 MB limit/);
    // The same, with the end record saying the directory holds no entry: JSZip reads them all anyway,
    // so the check must not take the count's word (it did, and 250 MB of XML took the worker down).
    const lying = zipOf([{ name: 'word/styles.xml', data: styles, size: 500_000_000 }]);
    lying.writeUInt16LE(0, lying.length - 22 + 8);
    lying.writeUInt16LE(0, lying.length - 22 + 10);
    expect((await refusal(() => PARSERS.DOCX(lying, { format: 'DOCX' }))).message).toMatch(/ZIP directory does not match its end record/);
    // Small in bytes, huge as a tree: 700,000 one-letter paragraphs (mammoth's DOM of 10 MB of them took 2.7 GB).
    const paragraphs = `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${'<w:p><w:r><w:t>a</w:t></w:r></w:p>'.repeat(120_000)}</w:body></w:document>`;
    const wide = zipOf([{ name: 'word/document.xml', data: zlib.deflateRawSync(paragraphs), size: Buffer.byteLength(paragraphs) }]);
    expect((await refusal(() => PARSERS.DOCX(wide, { format: 'DOCX' }))).message).toMatch(/has 720,004 XML tags, over the 600,000/);
    // Tables nested 3,000 deep: a plain refusal, not the converter's stack overflow.
    const part = (name: string, xml: string) => ({ name, data: zlib.deflateRawSync(xml), size: Buffer.byteLength(xml) });
    const W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"';
    const nested = `<w:document ${W}><w:body>${'<w:tbl><w:tr><w:tc>'.repeat(3000)}<w:p><w:r><w:t>deep</w:t></w:r></w:p>${'</w:tc></w:tr></w:tbl>'.repeat(3000)}</w:body></w:document>`;
    const deepDocx = zipOf([
      part('[Content_Types].xml', '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'),
      part('_rels/.rels', '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'),
      part('word/document.xml', nested),
    ]);
    expect((await refusal(() => PARSERS.DOCX(deepDocx, { format: 'DOCX' }))).message).toBe('the DOCX file could not be read: its content is nested too deeply');
  });

  it('reads pathological markup in linear time: comments before a page, long headings, brackets', async () => {
    // Each of these took seconds to hours with the patterns they replaced (exponential or quadratic backtracking).
    expect(detectFormat(bytes(`${'<!---->'.repeat(5000)}x`), 'TXT').format).toBe('TXT');
    expect(detectFormat(bytes('<!-- a --> <!-- b -->\n<!doctype html><html><body>Hi</body></html>'), 'TXT').format).toBe('HTML');
    expect(detectFormat(bytes('<!DOCTYPE\n      html>\n<html><body>Hi</body></html>'), 'TXT').format).toBe('HTML');
    const spaces = await PARSERS.MARKDOWN(bytes(`# a${' '.repeat(1_000_000)}b\n\ntext`), { format: 'MARKDOWN' });
    expect(spaces.sections[0]!.heading).toBe('a'); // cut at 500 characters, then trimmed
    const brackets = await PARSERS.MARKDOWN(bytes(`# ${'['.repeat(1_000_000)}\n\nbody`), { format: 'MARKDOWN' });
    expect(brackets.sections[0]!.heading!.length).toBeLessThanOrEqual(500);
    expect((await PARSERS.MARKDOWN(bytes('# Title ##\n\nBody\n\n## Sub #\n\nmore'), { format: 'MARKDOWN' })).sections.map((section) => section.heading)).toEqual(['Title', 'Title › Sub']);
  });

  it('reads text in the encoding it is in: byte-order marks, a declared charset, an HTML meta charset, legacy Latin-1', async () => {
    const sentence = 'René ordered a café crème in Besançon.';
    const utf16le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(sentence, 'utf16le')]);
    expect((await PARSERS.TXT(utf16le, { format: 'TXT' })).text).toBe(sentence);
    const utf16be = Buffer.from(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(sentence, 'utf16le')]).map((_, i, all) => (i < 2 ? all[i]! : all[i % 2 ? i - 1 : i + 1]!)));
    expect((await PARSERS.TXT(utf16be, { format: 'TXT' })).text).toBe(sentence);
    const latin1 = Buffer.from(sentence, 'latin1');
    // Undeclared: not valid UTF-8, so read as Windows-1252 — not refused, no replacement characters.
    expect((await PARSERS.TXT(latin1, { format: 'TXT' })).text).toBe(sentence);
    // UTF-8 with one stray Latin-1 byte stays UTF-8: only that byte is lost.
    const stray = Buffer.concat([Buffer.from('Le café de René '), Buffer.from([0xe9]), Buffer.from(' est ouvert.')]);
    expect((await PARSERS.TXT(stray, { format: 'TXT' })).text).toBe('Le café de René \uFFFD est ouvert.');
    // A replacement character written in otherwise plain ASCII UTF-8 is text, not a sign of Latin-1.
    expect((await PARSERS.TXT(Buffer.from('abc \uFFFD def'), { format: 'TXT' })).text).toBe('abc \uFFFD def');
    expect((await PARSERS.CSV(Buffer.from(`name,note\nRené,${sentence}\n`, 'latin1'), { format: 'CSV', declaredContentType: 'text/csv; charset=ISO-8859-1' })).text).toContain('name: René');
    const page = Buffer.from(`<html><head><meta charset="iso-8859-1"><title>t</title></head><body><p>${sentence}</p></body></html>`, 'latin1');
    expect((await PARSERS.HTML(page, { format: 'HTML' })).text).toContain(sentence);
  });

  it('reads Windows-1252 punctuation as punctuation, and undeclared legacy encodings and BOM-less UTF-16 as the text they hold', async () => {
    // Node's TextDecoder reads windows-1252 as Latin-1 (0x93 → U+0093, a control character).
    const quoted = '“Smart” quotes – dashes — and € signs… in ‘windows-1252’.';
    const cp1252 = iconv.encode(quoted, 'windows-1252');
    expect((await PARSERS.TXT(cp1252, { format: 'TXT' })).text).toBe(quoted);
    expect((await PARSERS.TXT(cp1252, { format: 'TXT', declaredContentType: 'text/plain; charset=windows-1252' })).text).toBe(quoted);
    const page = Buffer.concat([Buffer.from('<html><head><meta charset="windows-1252"><title>t</title></head><body><p>'), cp1252, Buffer.from('</p></body></html>')]);
    expect((await PARSERS.HTML(page, { format: 'HTML' })).text).toContain(quoted);
    // An upload's part declares no charset Cairn can read (multer drops it): the bytes tell.
    const legacy: [string, string][] = [
      ['windows-1251', 'Анна переехала в Казань в марте и работает учительницей музыки в местной школе.'],
      ['koi8-r', 'Борис купил новый велосипед и каждое утро ездит на нём на работу через парк.'],
      ['shift_jis', '田中さんは毎朝六時に起きて、公園を散歩してから会社に行きます。週末は山に登ります。'],
      ['gb18030', '李明上个月搬到了上海，现在在一家医院当医生。他每个周末都去图书馆看书。'],
      ['euc-kr', '김민수 씨는 지난달 부산으로 이사했고 지금은 병원에서 간호사로 일하고 있습니다.'],
    ];
    for (const [encoding, text] of legacy) expect([encoding, (await PARSERS.TXT(iconv.encode(text, encoding), { format: 'TXT' })).text]).toEqual([encoding, text]);
    const csv = iconv.encode('名前,メモ\n田中,毎朝六時に起きて公園を散歩します\n鈴木,週末は山に登ります\n', 'shift_jis');
    expect((await PARSERS.CSV(csv, { format: 'CSV' })).text).toContain('名前: 田中');
    const sentence = 'UTF-16 without its byte-order mark is still René’s text.';
    expect((await PARSERS.TXT(Buffer.from(sentence, 'utf16le'), { format: 'TXT' })).text).toBe(sentence);
    expect((await PARSERS.TXT(iconv.encode(sentence, 'utf-16be'), { format: 'TXT' })).text).toBe(sentence);
    // 16-bit binary samples are not taken for UTF-16 text.
    const samples = Buffer.alloc(4096);
    for (let i = 0; i < samples.length; i += 2) samples[i] = (i * 7) % 32;
    expect((await refusal(() => PARSERS.TXT(samples, { format: 'TXT' }))).message).toMatch(/is not text/);
  });

  it('cuts long headings and titles between characters, never inside an emoji', async () => {
    const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    const markdown = await PARSERS.MARKDOWN(bytes(`# ${'a'.repeat(499)}😀 and more\n\nbody`), { format: 'MARKDOWN' });
    expect(markdown.sections[0]!.heading).toBe('a'.repeat(499));
    const json = await PARSERS.JSON(bytes(JSON.stringify({ title: `${'t'.repeat(1023)}𝓐 rest`, body: 'The ferry leaves at nine.' })), { format: 'JSON' });
    expect(json.title).toBe('t'.repeat(1023));
    expect(clipTurn(`${'w'.repeat(399)}👍🏽 done`)).toBe(`${'w'.repeat(399)}…`);
    for (const text of [markdown.sections[0]!.heading!, json.title!, clipTurn('👍'.repeat(300))]) expect(text).not.toMatch(lone);
  });

  it('does not mistake text for a binary it merely begins like, nor for a PDF it mentions', () => {
    expect(detectFormat(bytes('# Note\nThe file starts with the header %PDF-1.7 as usual.'), 'MARKDOWN')).toEqual({ format: 'MARKDOWN' });
    expect(detectFormat(bytes('ID3,name\n1,a\n'), 'CSV')).toEqual({ format: 'CSV' });
    expect(detectFormat(bytes('GIF89a is an image format from 1989.'), 'TXT')).toEqual({ format: 'TXT' });
  });

  it('keeps markdown front matter as metadata text, not as a heading', async () => {
    const parsed = await PARSERS.MARKDOWN(bytes('---\ntitle: "Harbour log"\ndate: 2024-05-01\ntags: [ferries]\n---\n\n## Morning\n\nThe ferry left at six.'), { format: 'MARKDOWN' });
    expect(parsed.title).toBe('Harbour log');
    expect(parsed.sections[0]).toMatchObject({ text: 'title: "Harbour log"\ndate: 2024-05-01\ntags: [ferries]' });
    expect(parsed.sections[0]!.heading).toBeUndefined();
    expect(parsed.sections[1]).toMatchObject({ heading: 'Morning', text: 'The ferry left at six.' });
    // A file of headings alone (a title, an outline) is read as its headings, not refused as empty.
    expect((await PARSERS.MARKDOWN(bytes('# Hello world\n'), { format: 'MARKDOWN' })).text).toBe('Hello world');
    expect((await PARSERS.MARKDOWN(bytes('# Trip\n## Packing\n## Ferries\n'), { format: 'MARKDOWN' })).text).toBe('Trip\nPacking\nFerries');
    expect((await refusal(() => PARSERS.MARKDOWN(bytes('\n   \n'), { format: 'MARKDOWN' }))).message).toBe('the markdown document contains no text');
  });

  it("keeps an HTML article's heading path, h1 › h2 › h3, as Markdown's (Readability makes every h1 an h2)", async () => {
    const para = (text: string) => `<p>${text} ${'The studio opens its doors to new students every week of the season. '.repeat(3)}</p>`;
    const page = `<html><head><title>Studio news</title></head><body><nav><a href="/">Home</a></nav><article><h1>Pottery class</h1>${para('Caroline signed up for the Tuesday class.')}<h2>Materials</h2>${para('Clay and glazes are included in the fee.')}<h3>Glazes</h3>${para('Blue glazes are popular.')}</article></body></html>`;
    const parsed = await PARSERS.HTML(bytes(page), { format: 'HTML' });
    expect(parsed.sections.map((section) => section.heading)).toEqual(['Pottery class', 'Pottery class › Materials', 'Pottery class › Materials › Glazes']);
  });

  it('reads HTML that is no whole page: bare text, fragments; a lone script is no text', async () => {
    expect((await PARSERS.HTML(bytes('plain words here'), { format: 'HTML' })).text).toBe('plain words here');
    expect((await PARSERS.HTML(bytes('<p>One</p><p>Two</p>'), { format: 'HTML' })).text).toBe('One\n\nTwo');
    for (const markup of ['<script>x</script>', '<style>a{}</style>', '']) {
      await expect(PARSERS.HTML(bytes(markup), { format: 'HTML' })).rejects.toThrow('the HTML page contains no readable text');
    }
  });

  it('leaves navigation out of a short page, also one sent as plain text', async () => {
    const page = '<!doctype html><html><body><div class="navbar">NAVBAR A | NAVBAR B</div><div id="sidebar">Related links</div>' +
      '<div role="banner">Site banner</div><p>The lock keeper opens the gates at dawn.</p><script>var tracking = 1;</script></body></html>';
    expect(detectFormat(bytes(page), 'TXT')).toEqual({ format: 'HTML', note: 'declared TXT but the content is HTML' });
    const text = (await PARSERS.HTML(bytes(page), { format: 'HTML' })).text;
    expect(text).toContain('The lock keeper opens the gates at dawn.');
    expect(text).not.toMatch(/NAVBAR|Related links|Site banner|tracking/);
    // Class names that describe the page (WordPress, Bulma) do not make it furniture.
    const themed = '<!doctype html><html class="has-navbar-fixed-top"><body class="post has-sidebar"><main id="content-sidebar-wrap"><p>The ferry to Hydra leaves at eight.</p></main></body></html>';
    expect((await PARSERS.HTML(bytes(themed), { format: 'HTML' })).text).toContain('The ferry to Hydra leaves at eight.');
  });

  it('reads semicolon CSVs and quoted fields', async () => {
    const document = await PARSERS.CSV(bytes('name;note\nAna;"likes ""bacalhau""; and port"\n'), { format: 'CSV' });
    expect(document.sections[0]!.text).toBe('name: Ana | note: likes "bacalhau"; and port');
  });
});

/** A ZIP of deflated parts whose directory records the given sizes (true or not). */
/** A PDF of `pages` one-line pages, all in one flat list of kids (as a careless generator writes them). */
function flatPdf(pages: number): Uint8Array {
  const content = 'BT /F1 12 Tf 72 720 Td (Frank met Grace in Madrid.) Tj ET';
  const objects = new Map<number, string>([
    [1, '<< /Type /Catalog /Pages 2 0 R >>'],
    [2, `<< /Type /Pages /Count ${pages} /Kids [${Array.from({ length: pages }, (_, i) => `${5 + i} 0 R`).join(' ')}] >>`],
    [3, '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'],
    [4, `<< /Length ${content.length} >>\nstream\n${content}\nendstream`],
  ]);
  for (let i = 0; i < pages; i++) objects.set(5 + i, '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>');
  let body = '%PDF-1.4\n';
  const offsets: number[] = [];
  for (const [number, object] of [...objects].sort(([a], [b]) => a - b)) {
    offsets[number] = body.length;
    body += `${number} 0 obj\n${object}\nendobj\n`;
  }
  const xref = body.length;
  const size = objects.size + 1;
  body += `xref\n0 ${size}\n0000000000 65535 f \n`;
  for (let number = 1; number < size; number++) body += `${String(offsets[number]).padStart(10, '0')} 00000 n \n`;
  body += `trailer\n<< /Size ${size} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return new TextEncoder().encode(body);
}

function zipOf(parts: { name: string; data: Buffer; size: number }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const part of parts) {
    const name = Buffer.from(part.name);
    const local = Buffer.alloc(30 + name.length);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(part.data.length, 18);
    local.writeUInt32LE(part.size, 22);
    local.writeUInt16LE(name.length, 26);
    name.copy(local, 30);
    const central = Buffer.alloc(46 + name.length);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(part.data.length, 20);
    central.writeUInt32LE(part.size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    name.copy(central, 46);
    locals.push(local, part.data);
    centrals.push(central);
    offset += local.length + part.data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(parts.length, 8);
  end.writeUInt16LE(parts.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}
