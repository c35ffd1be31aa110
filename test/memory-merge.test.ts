import { smartMerge } from '../lib/memory-merge';

describe('smart-merge: a new sentence restating an old one replaces it; the others stay, in any script', () => {
  it('replaces the restated sentence and keeps the unrelated one, in English, Hindi, Chinese and Japanese', () => {
    expect(smartMerge('I live in Delhi. My sister is a doctor.', 'I live in Mumbai.')).toBe('My sister is a doctor. I live in Mumbai.');
    // Devanagari ends a sentence with a danda (।), and a vowel sign is part of its word, not a break in it.
    expect(smartMerge('मैं दिल्ली में रहता हूँ। मेरी बहन डॉक्टर है।', 'मैं मुंबई में रहता हूँ।')).toBe('मेरी बहन डॉक्टर है। मैं मुंबई में रहता हूँ।');
    // Chinese and Japanese: 。 ends a sentence with no space after it; words are found without spaces.
    expect(smartMerge('我住在北京。我的姐姐是医生。', '我住在上海。')).toBe('我的姐姐是医生。我住在上海。');
    expect(smartMerge('私は東京に住んでいます。妹は医者です。', '私は大阪に住んでいます。')).toBe('妹は医者です。私は大阪に住んでいます。');
  });

  it('adds what is new and collapses exact repeats', () => {
    expect(smartMerge('Maya likes tea.', 'Maya likes tea. She runs on Sundays.')).toBe('Maya likes tea. She runs on Sundays.');
    expect(smartMerge('我喜欢喝茶。', '我喜欢喝茶。')).toBe('我喜欢喝茶。');
  });
});
